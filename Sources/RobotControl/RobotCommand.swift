/// What the command side can ask of the robot. Distances in metres, angles in degrees.
public enum RobotCommand: Sendable, Equatable {
    /// Walk straight along the current heading (negative reverses).
    case walk(metres: Double, speedMetresPerSecond: Double?)
    /// Turn on the spot, then walk straight to a yard position.
    case walkTo(x: Double, y: Double, speedMetresPerSecond: Double?)
    /// Turn on the spot by an angle (counter-clockwise positive).
    case turn(degrees: Double)
    /// Turn on the spot to a heading.
    case turnTo(headingDegrees: Double)
    /// Raise or lower the detector to a height above ground.
    case lift(heightMetres: Double)
    /// Home the lift (needed after power-up).
    case homeLift
    /// Decelerate both axes to a stop; overrides running motion.
    case stop
    /// Dwell and return a reading with its uncertainty.
    case measure(seconds: Double)
    /// Clear a safety stop or drive faults once their cause is gone.
    case resetFault
    /// Software e-stop: cuts drive power at the firmware. Needs no lease.
    case estop
    /// Release a software e-stop (and reset, like `resetFault`).
    case releaseEstop

    var isMotion: Bool {
        switch self {
        case .walk, .walkTo, .turn, .turnTo, .lift, .homeLift: return true
        default: return false
        }
    }

    var usesChassis: Bool {
        switch self {
        case .walk, .walkTo, .turn, .turnTo: return true
        default: return false
        }
    }
}

/// Where a command is in its life.
public enum CommandState: String, Sendable, Equatable, Codable {
    case accepted, running, done, blocked, overridden, expired, failed

    public var isFinal: Bool {
        switch self {
        case .accepted, .running: return false
        default: return true
        }
    }
}

/// A dose-rate reading from a dwell, with its counting uncertainty (1 σ).
public struct Reading: Sendable, Equatable, Codable {
    public var counts: UInt32
    public var seconds: Double
    public var countRatePerSecond: Double
    public var countRateUncertaintyPerSecond: Double
    /// counts/s ÷ sensitivity × calibration factor, dead time corrected.
    public var doseRateMicrosievertsPerHour: Double
    public var doseRateUncertaintyMicrosievertsPerHour: Double
    /// Mean of the instrument's own (filtered) display over the dwell.
    public var instrumentDoseRateMicrosievertsPerHour: Double
    public var overload: Bool
}
