/// A departure from `firmware-protocol/` that the simulator can bring back on purpose
/// (`robot-sim --deviant LIST`, a rig's `deviant:`): each is one of the behaviours the
/// simulator had before protocol 1.1 wrote the rule down, and each breaks exactly the rule
/// named by `rule`. The conformance kit must report every one as a FAIL of that rule,
/// which is how it shows that it can fail.
public enum Deviation: String, CaseIterable, Sendable, Codable {
    case enableWithSetpoint, exceptionSideEffects, haltInstant, disableCoasts, shortWayTurn
    case quickStopIgnored, faultResetWithCause, noLimitFault, resetWhileExpired, noBootInterlock
    case invalidModeStored, poseSurvivesReboot, noBootingPhase, setpointAckSticky, idleEdgeFreezes
    case undefinedBitsAccepted, splitFieldAccepted, fault16WhileHvOff, homingEndsAtSwitch
    case protectiveStopNotLatched

    /// The protocol rule (`firmware-protocol/README.md`) the deviation breaks.
    public var rule: String {
        switch self {
        case .enableWithSetpoint: return "D5.3"
        case .exceptionSideEffects: return "F3.6"
        case .haltInstant: return "D5.7"
        case .disableCoasts: return "D5.2"
        case .shortWayTurn: return "D5.11"
        case .quickStopIgnored: return "D5.1"
        case .faultResetWithCause: return "D5.9"
        case .noLimitFault: return "L6.2"
        case .resetWhileExpired: return "W7.4"
        case .noBootInterlock: return "W7.5"
        case .invalidModeStored: return "D5.13"
        case .poseSurvivesReboot: return "Q9.4"
        case .noBootingPhase: return "F3.9"
        case .setpointAckSticky: return "D5.5"
        case .idleEdgeFreezes: return "D5.8"
        case .undefinedBitsAccepted: return "F3.4"
        case .splitFieldAccepted: return "F3.3"
        case .fault16WhileHvOff: return "R8.5"
        case .homingEndsAtSwitch: return "L6.3"
        case .protectiveStopNotLatched: return "H9.3"
        }
    }

    /// What the simulator then does, in one line.
    public var behaviour: String {
        switch self {
        case .enableWithSetpoint: return "0x001F in switched on enables and starts the move in one write"
        case .exceptionSideEffects: return "a write refused with exception 4 still stores its registers and makes its transition"
        case .haltInstant: return "halt stops the chassis in one step, the lift reports target reached while still moving, and halt plus a set-point still moves"
        case .disableCoasts: return "the lift disabled while moving keeps reporting its speed and coasts on re-enable"
        case .shortWayTurn: return "turn-by (mode 3) takes the short way: +270° runs as −90°, 360° as no turn"
        case .quickStopIgnored: return "quick stop is ignored in ready to switch on and switched on, and quick stop active never ends by itself"
        case .faultResetWithCause: return "fault reset clears a bumper fault while the bumper is still pressed"
        case .noLimitFault: return "a limit switch outside homing only sets its flag, never fault 3"
        case .resetWhileExpired: return "a reset edge clears estopLatched while the watchdog is still expired"
        case .noBootInterlock: return "at power-up the first watchdog refresh powers the drives, with no reset"
        case .invalidModeStored: return "an undefined lift mode is stored, and every later controlword write is refused"
        case .poseSurvivesReboot: return "the pose and poseSet survive a reboot"
        case .noBootingPhase: return "no booting phase: a unit answers at once after a reboot"
        case .setpointAckSticky: return "set-point acknowledge is never cleared"
        case .idleEdgeFreezes: return "mode 0 with a set-point edge freezes the chassis at its speed"
        case .undefinedBitsAccepted: return "undefined controlword and output bits are accepted"
        case .splitFieldAccepted: return "a write of one half of a 32-bit field is accepted"
        case .fault16WhileHvOff: return "fault 16 (no counts) counts while the high voltage is off"
        case .homingEndsAtSwitch: return "homing ends at 0.300 m with the lower switch still closed"
        case .protectiveStopNotLatched: return "protectiveStop drops as soon as the protective field is clear, before a new set-point"
        }
    }

    /// Parses `all` or a comma-separated list of names.
    public static func parse(_ text: String) throws(SimulatorArgumentError) -> Set<Deviation> {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if names == ["all"] { return Set(allCases) }
        var result = Set<Deviation>()
        for name in names {
            guard let deviation = Deviation(rawValue: name) else {
                throw SimulatorArgumentError(message: "unknown deviation '\(name)'; allowed: all, "
                                             + allCases.map(\.rawValue).joined(separator: ", "))
            }
            result.insert(deviation)
        }
        return result
    }
}

/// A bad simulator argument, with what is allowed.
public struct SimulatorArgumentError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

import Foundation
