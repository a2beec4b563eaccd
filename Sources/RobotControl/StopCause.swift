/// One of the robot's four units, as the loop names it in stops and refusals.
public enum RobotDevice: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case safety, chassis, lift, detector
    public var description: String { rawValue }
}

/// Why the safety supervisor stopped the robot. A stop latches until an explicit reset.
public enum StopCause: Sendable, Equatable, CustomStringConvertible {
    case hardwareEstop
    case softwareEstop
    /// A unit missed this many polls in a row.
    case lostLink(device: RobotDevice, missedPolls: Int)
    case watchdogExpired
    case watchdogWritesFailing
    case bumper
    case liftLimitSwitch(upper: Bool)
    case liftOutOfRange(heightMetres: Double)
    case detectorOverload
    case deadman(secondsSinceKeepAlive: Double)
    case driveFault(device: RobotDevice, code: UInt16)
    /// A unit's firmware started again while the controller ran (protocol 1.1: the safety
    /// unit's boot interlock, or the chassis losing the pose it was given).
    case firmwareRestarted(device: RobotDevice)

    /// Causes that cut drive power at once (software e-stop at the firmware); the
    /// others decelerate under control first.
    public var isImmediate: Bool {
        switch self {
        case .deadman, .detectorOverload, .liftOutOfRange: return false
        // Listed one by one, so a new cause must be classified here to compile.
        case .hardwareEstop, .softwareEstop, .lostLink, .watchdogExpired, .watchdogWritesFailing, .bumper,
             .liftLimitSwitch, .driveFault, .firmwareRestarted:
            return true
        }
    }

    public var code: String {
        switch self {
        case .hardwareEstop: return "hardwareEstop"
        case .softwareEstop: return "softwareEstop"
        case .lostLink: return "lostLink"
        case .watchdogExpired: return "watchdogExpired"
        case .watchdogWritesFailing: return "watchdogWritesFailing"
        case .bumper: return "bumper"
        case .liftLimitSwitch: return "liftLimitSwitch"
        case .liftOutOfRange: return "liftOutOfRange"
        case .detectorOverload: return "detectorOverload"
        case .deadman: return "deadman"
        case .driveFault: return "driveFault"
        case .firmwareRestarted: return "firmwareRestarted"
        }
    }

    public var description: String {
        switch self {
        case .hardwareEstop: return "hardware e-stop button pressed"
        case .softwareEstop: return "software e-stop"
        case let .lostLink(device, missed): return "lost link to \(device) (\(missed) polls missed)"
        case .watchdogExpired: return "firmware watchdog expired"
        case .watchdogWritesFailing: return "firmware watchdog refresh writes are failing"
        case .bumper: return "bumper pressed"
        case let .liftLimitSwitch(upper): return "lift \(upper ? "upper" : "lower") limit switch hit"
        case let .liftOutOfRange(h): return "lift at \(String(format: "%.3f", h)) m is outside its range"
        case .detectorOverload: return "detector overload during a measurement"
        case let .deadman(s): return "deadman: no keep-alive for \(String(format: "%.1f", s)) s"
        case let .driveFault(device, code): return "\(device) drive fault \(code)"
        case let .firmwareRestarted(device): return "the \(device) unit restarted (its firmware booted again)"
        }
    }
}

/// Why a command was blocked or failed: what was wrong and what is allowed.
public enum CommandProblem: Sendable, Equatable, CustomStringConvertible {
    case outOfRange(what: String, value: Double, minimum: Double, maximum: Double, unit: String)
    case keepOut(x: Double, y: Double)
    case stopped(StopCause)
    case liftNotHomed
    case driveFault(device: RobotDevice, code: UInt16)
    case deviceUnavailable(device: RobotDevice)
    /// The detector restarted (its counters went back) during a measurement.
    case detectorRestarted
    case mailboxFull
    case expired
    case overridden
    case notArrived(errorMetres: Double)
    case timedOut(seconds: Double)
    case causeStillPresent(StopCause)
    case busError(String)
    case shuttingDown
    case estopPressedSince
    /// Something stayed in the protective field (H9) longer than `people.holdLimitSeconds`.
    case heldByProtectiveField(seconds: Double)

    public var description: String {
        switch self {
        case let .outOfRange(what, value, minimum, maximum, unit):
            return String(format: "%@ %.3f %@ is out of range; allowed %.3f to %.3f %@", what, value, unit, minimum, maximum, unit)
        case let .keepOut(x, y):
            return String(format: "the path to (%.3f, %.3f) m enters a keep-out zone around a container", x, y)
        case .stopped(let cause):
            return "the robot is stopped (\(cause)); reset it first"
        case .liftNotHomed:
            return "the lift is not homed; home it first"
        case let .driveFault(device, code):
            return "\(device) drive is in fault \(code); reset it first"
        case .deviceUnavailable(let device):
            return "\(device) is not available (link lost or not configured)"
        case .detectorRestarted:
            return "detector (restarted during the measurement) is not available (link lost or not configured)"
        case .mailboxFull:
            return "the command mailbox is full; retry"
        case .expired:
            return "the command expired before the loop took it"
        case .overridden:
            return "overridden by a newer command"
        case .notArrived(let error):
            return String(format: "stopped %.1f mm from the target, outside tolerance", error * 1000)
        case .timedOut(let seconds):
            return String(format: "did not finish within %.1f s", seconds)
        case .causeStillPresent(let cause):
            return "cannot reset: \(cause) is still present"
        case .busError(let message):
            return message
        case .estopPressedSince:
            return "an e-stop was pressed after this reset or release was sent; it stays stopped until released again"
        case .heldByProtectiveField(let seconds):
            return String(format: "something stayed in the protective field for %.0f s, so the move was not finished; clear the path and send it again", seconds)
        case .shuttingDown:
            return "the controller is shutting down; motion is refused (only parking the lift is allowed)"
        }
    }
}

/// What the command side sees of one command.
public struct CommandFeedback: Sendable, Equatable {
    public var id: UInt64
    public var command: RobotCommand
    public var state: CommandState
    public var problem: CommandProblem?
    public var reading: Reading?
    /// CLOCK_MONOTONIC nanoseconds of the last change.
    public var updatedAtNanoseconds: UInt64
}
