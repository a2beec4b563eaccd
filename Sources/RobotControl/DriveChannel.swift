import FirmwareProtocol
import RobotIO

/// One CiA 402 drive as the loop drives it: its command block image, the bus slot
/// that carries it, and where the current command is.
struct DriveChannel {
    enum Phase: Equatable {
        case idle
        /// Stepping the drive to operation enabled, one transition per write.
        case enabling
        /// Set-point written with a new-set-point edge; waiting for it to reach the wire.
        case starting(sequence: UInt64)
        /// Edge cleared; the drive is moving to the target.
        case moving(sequence: UInt64)
        /// Stopped by the protective field (H9.2); waiting for it to clear (chassis only).
        case held
    }

    let device: RobotDevice
    let unit: UInt8
    let slot: OutputSlot
    /// The command block as the loop last posted it (preallocated; mutated in place).
    var words: [UInt16]
    var phase: Phase = .idle
    var commandId: UInt64 = 0
    var deadlineNanoseconds: UInt64 = 0
    /// The time the current command was given (expected duration × 1.5 + 3 s).
    var allowedSeconds = 0.0
    var postedSequence: UInt64 = 0
    /// The command that was current when `postedSequence` was posted.
    var postedForCommand: UInt64 = 0
    /// The set-point to send once enabled (controlword left out).
    var setpoint: [UInt16]

    init(device: RobotDevice, unit: UInt8, slot: OutputSlot, blockCount: Int) {
        self.device = device
        self.unit = unit
        self.slot = slot
        words = [UInt16](repeating: 0, count: blockCount)
        setpoint = [UInt16](repeating: 0, count: blockCount)
    }

    var isBusy: Bool { phase != .idle }

    /// Posts the block image with `controlword`, replacing the first word.
    mutating func post(_ bus: any ControlBus, controlword: Controlword) {
        words[0] = controlword.rawValue
        postedForCommand = commandId
        postedSequence = bus.post(slot) { buffer in
            for i in 0..<words.count { buffer[i] = words[i] }
            return words.count
        }
    }

    /// Copies the set-point into the image and posts it with `controlword`.
    mutating func postSetpoint(_ bus: any ControlBus, controlword: Controlword) {
        for i in 1..<words.count { words[i] = setpoint[i] }
        post(bus, controlword: controlword)
    }

    /// Posts an idle block (mode 0, so no old target survives) with `controlword`.
    mutating func postIdle(_ bus: any ControlBus, controlword: Controlword) {
        words[1] = 0
        post(bus, controlword: controlword)
    }
}
