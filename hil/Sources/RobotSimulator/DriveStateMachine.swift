import FirmwareProtocol

/// The firmware side of the CiA 402 state machine: what a drive does with each
/// controlword it is given (`firmware-protocol/README.md` §5, the transition table D5.1).
public struct DriveStateMachine: Sendable, Equatable {
    public private(set) var state: DriveState = .switchOnDisabled
    public private(set) var faultCode: UInt16 = 0
    public private(set) var previousControlword: Controlword = []
    /// Brings back the pre-1.1 quick-stop handling (`Deviation.quickStopIgnored`).
    public var legacyQuickStop = false

    public init() {}

    /// True when the drive may follow set-points.
    public var isEnabled: Bool { state == .operationEnabled }

    /// The state this controlword would lead to, without changing anything: one
    /// transition of D5.1 at most. `faultCauseGone` is false while the cause of the
    /// present fault persists (a pressed bumper), so a reset edge does not leave fault.
    public func next(_ word: Controlword, powerAvailable: Bool, faultCauseGone: Bool = true) -> DriveState {
        if state == .fault || state == .faultReactionActive {
            let risingFaultReset = word.contains(.faultReset) && !previousControlword.contains(.faultReset)
            return risingFaultReset && faultCauseGone ? .switchOnDisabled : state
        }
        guard powerAvailable else { return .switchOnDisabled }
        let voltage = word.contains(.enableVoltage)
        // Quick stop is bit 2 low with bit 1 high; without bit 1 it is disable voltage.
        let quickStop = voltage && !word.contains(.quickStop)
        let command = word.intersection([.switchOn, .enableVoltage, .quickStop, .enableOperation])
        switch state {
        case .switchOnDisabled, .notReadyToSwitchOn:
            return command == .shutdown ? .readyToSwitchOn : state
        case .readyToSwitchOn:
            if command == .switchOnCommand || command == .enableOperationCommand { return .switchedOn }
            if !voltage || (quickStop && !legacyQuickStop) { return .switchOnDisabled }
            return state
        case .switchedOn:
            if command == .enableOperationCommand { return .operationEnabled }
            if command == .shutdown { return .readyToSwitchOn }
            if !voltage || (quickStop && !legacyQuickStop) { return .switchOnDisabled }
            return state
        case .operationEnabled:
            if !voltage { return .switchOnDisabled }
            if quickStop { return .quickStopActive }
            if command == .shutdown { return .readyToSwitchOn }
            if command == .switchOnCommand { return .switchedOn }
            return state
        case .quickStopActive:
            return voltage ? state : .switchOnDisabled
        case .fault, .faultReactionActive:
            return state
        }
    }

    /// Applies a controlword: the transition of `next`, and the word is remembered for
    /// the next edge. Returns true on a rising edge of `newSetpoint`.
    @discardableResult
    public mutating func apply(_ word: Controlword, powerAvailable: Bool, faultCauseGone: Bool = true) -> Bool {
        let target = next(word, powerAvailable: powerAvailable, faultCauseGone: faultCauseGone)
        if (state == .fault || state == .faultReactionActive) && target == .switchOnDisabled { faultCode = 0 }
        state = target
        let edge = word.contains(.newSetpoint) && !previousControlword.contains(.newSetpoint)
        previousControlword = word
        return edge
    }

    /// True if this word carries a rising edge of `newSetpoint`.
    public func isSetpointEdge(_ word: Controlword) -> Bool {
        word.contains(.newSetpoint) && !previousControlword.contains(.newSetpoint)
    }

    /// Power to the drives was cut (e-stop, watchdog): drop to switch-on disabled.
    public mutating func powerLost() {
        if state != .fault { state = .switchOnDisabled }
    }

    /// A quick stop has brought the axis to standstill: the automatic transition to
    /// switch on disabled (quick-stop option code 2).
    public mutating func quickStopFinished() {
        if state == .quickStopActive && !legacyQuickStop { state = .switchOnDisabled }
    }

    public mutating func raiseFault(_ code: UInt16) {
        state = .fault
        faultCode = code
    }

    /// Lost all state, as after a reboot.
    public mutating func reboot() {
        let legacy = legacyQuickStop
        self = DriveStateMachine()
        legacyQuickStop = legacy
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
