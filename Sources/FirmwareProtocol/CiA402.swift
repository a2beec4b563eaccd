/// The CiA 402 drive state machine, as both the chassis and the lift implement it.
public enum DriveState: String, Sendable, Equatable, CaseIterable {
    case notReadyToSwitchOn
    case switchOnDisabled
    case readyToSwitchOn
    case switchedOn
    case operationEnabled
    case quickStopActive
    case faultReactionActive
    case fault

    /// Decodes the state bits of a statusword (CiA 402 table, bits 0-3, 5 and 6).
    public init(statusword: UInt16) {
        switch statusword {
        case let s where s & 0x4F == 0x08: self = .fault
        case let s where s & 0x4F == 0x0F: self = .faultReactionActive
        case let s where s & 0x4F == 0x40: self = .switchOnDisabled
        case let s where s & 0x6F == 0x21: self = .readyToSwitchOn
        case let s where s & 0x6F == 0x23: self = .switchedOn
        case let s where s & 0x6F == 0x27: self = .operationEnabled
        case let s where s & 0x6F == 0x07: self = .quickStopActive
        default: self = .notReadyToSwitchOn
        }
    }

    /// The statusword state bits that a drive in this state reports (bit 4, voltage
    /// enabled, is set whenever power is on and left to the caller).
    public var statusBits: UInt16 {
        switch self {
        case .notReadyToSwitchOn: return 0x0000
        case .switchOnDisabled: return 0x0040
        case .readyToSwitchOn: return 0x0021
        case .switchedOn: return 0x0023
        case .operationEnabled: return 0x0027
        case .quickStopActive: return 0x0007
        case .faultReactionActive: return 0x000F
        case .fault: return 0x0008
        }
    }
}

/// Controlword bits and the standard commands built from them.
public struct Controlword: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let switchOn = Controlword(rawValue: 1 << 0)
    public static let enableVoltage = Controlword(rawValue: 1 << 1)
    /// Active low: clearing this bit requests a quick stop.
    public static let quickStop = Controlword(rawValue: 1 << 2)
    public static let enableOperation = Controlword(rawValue: 1 << 3)
    /// Rising edge starts the set-point (or homing) in the command block.
    public static let newSetpoint = Controlword(rawValue: 1 << 4)
    /// Rising edge clears a fault.
    public static let faultReset = Controlword(rawValue: 1 << 7)
    /// Decelerate and hold while set.
    public static let halt = Controlword(rawValue: 1 << 8)

    public static let shutdown: Controlword = [.enableVoltage, .quickStop]
    public static let switchOnCommand: Controlword = [.enableVoltage, .quickStop, .switchOn]
    public static let enableOperationCommand: Controlword = [.enableVoltage, .quickStop, .switchOn, .enableOperation]
    public static let disableVoltage: Controlword = []
    public static let quickStopCommand: Controlword = [.enableVoltage]

    /// The command that moves a drive one step towards `operationEnabled` from `state`,
    /// or `nil` when it is there already. A fault needs an explicit reset edge instead.
    public static func stepTowardsEnabled(from state: DriveState) -> Controlword? {
        switch state {
        case .switchOnDisabled, .notReadyToSwitchOn: return .shutdown
        case .readyToSwitchOn: return .switchOnCommand
        case .switchedOn: return .enableOperationCommand
        case .quickStopActive: return .disableVoltage
        case .operationEnabled, .fault, .faultReactionActive: return nil
        }
    }
}

/// Statusword bits beyond the state bits.
public enum StatuswordBit {
    public static let voltageEnabled: UInt16 = 1 << 4
    public static let warning: UInt16 = 1 << 7
    public static let targetReached: UInt16 = 1 << 10
    public static let setpointAcknowledge: UInt16 = 1 << 12
}
