import FirmwareProtocol

/// The firmware side of the CiA 402 state machine: what a drive does with each
/// controlword it is given.
public struct DriveStateMachine: Sendable, Equatable {
    public private(set) var state: DriveState = .switchOnDisabled
    public private(set) var faultCode: UInt16 = 0
    private var previousControlword: Controlword = []

    public init() {}

    /// True when the drive may follow set-points.
    public var isEnabled: Bool { state == .operationEnabled }

    /// Applies a controlword. Returns true on a rising edge of `newSetpoint` while enabled.
    @discardableResult
    public mutating func apply(_ word: Controlword, powerAvailable: Bool) -> Bool {
        defer { previousControlword = word }
        let risingFaultReset = word.contains(.faultReset) && !previousControlword.contains(.faultReset)
        if state == .fault {
            if risingFaultReset {
                state = .switchOnDisabled
                faultCode = 0
            }
            return false
        }
        guard powerAvailable else {
            state = .switchOnDisabled
            return false
        }
        let command = word.intersection([.switchOn, .enableVoltage, .quickStop, .enableOperation])
        switch state {
        case .switchOnDisabled, .notReadyToSwitchOn:
            if command == .shutdown { state = .readyToSwitchOn }
        case .readyToSwitchOn:
            if command == .switchOnCommand { state = .switchedOn }
            else if command == .enableOperationCommand { state = .switchedOn }
            else if !command.contains(.enableVoltage) { state = .switchOnDisabled }
        case .switchedOn:
            if command == .enableOperationCommand { state = .operationEnabled }
            else if command == .shutdown { state = .readyToSwitchOn }
            else if !command.contains(.enableVoltage) { state = .switchOnDisabled }
        case .operationEnabled:
            if !command.contains(.enableVoltage) { state = .switchOnDisabled }
            else if !command.contains(.quickStop) { state = .quickStopActive }
            else if command == .shutdown { state = .readyToSwitchOn }
            else if command == .switchOnCommand { state = .switchedOn }
        case .quickStopActive:
            if !command.contains(.enableVoltage) { state = .switchOnDisabled }
        case .fault, .faultReactionActive:
            break
        }
        return state == .operationEnabled && word.contains(.newSetpoint) && !previousControlword.contains(.newSetpoint)
    }

    /// Power to the drives was cut (e-stop, watchdog): drop to switch-on disabled.
    public mutating func powerLost() {
        if state != .fault { state = .switchOnDisabled }
    }

    public mutating func raiseFault(_ code: UInt16) {
        state = .fault
        faultCode = code
    }

    /// Lost all state, as after a reboot.
    public mutating func reboot() {
        self = DriveStateMachine()
    }

    public func statusword(targetReached: Bool, setpointAcknowledged: Bool) -> UInt16 {
        var word = state.statusBits
        if state == .operationEnabled || state == .switchedOn || state == .readyToSwitchOn || state == .quickStopActive {
            word |= StatuswordBit.voltageEnabled
        }
        if targetReached { word |= StatuswordBit.targetReached }
        if setpointAcknowledged { word |= StatuswordBit.setpointAcknowledge }
        return word
    }
}
