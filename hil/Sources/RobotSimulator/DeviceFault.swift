/// Faults of the robot's hardware, injected from a scenario or at run time.
public enum DeviceFault: Sendable, Equatable, Codable {
    /// All four units power up again: drive states, homing, the pose, counts and the
    /// watchdog are lost (B4.1-B4.3).
    case reboot
    /// One unit ("safety", "chassis", "lift" or "detector") restarts on its own.
    case restart(device: String)
    /// The named drive ("chassis" or "lift") trips with a fault code.
    case driveFault(device: String, code: UInt16)
    /// The lift motor turns but the mast does not move (following error follows).
    case liftStuck(Bool)
    /// A hardware e-stop button is pressed (true) or released (false).
    case estopButton(Bool)
    /// The detector sees a rate above its range.
    case detectorOverload(Bool)
    /// The detector gives no pulses.
    case detectorDead(Bool)
    /// The front bumper is pressed (true) or released.
    case bumper(Bool)
    /// Not a fault: the officer puts a check source in its holder on the probe, adding this
    /// dose rate at the detector (0 takes it away).
    case checkSource(microsievertsPerHour: Double)
    /// A lift limit switch is held closed (true) or let go: outside homing its closing is
    /// fault 3 (protocol 1.1, L6.2), as when the mast overruns its travel.
    case limitSwitch(upper: Bool, closed: Bool)
    /// A test piece standing `metres` ahead of the chassis' leading edge (its near side), as a
    /// rig puts one in front of the protective-field scanner; `metres` nil takes it away.
    case obstacleAhead(metres: Double?)
    /// The protective-field scanner reports a fault (true) or recovers (H9.4).
    case fieldScannerFault(Bool)
    /// Not a fault: the robot has been charged (or its pack changed) to this charge.
    case batteryCharge(percent: Double)
}

/// Faults of the serial link, applied to the next requests that reach the simulator.
public enum BusFault: Sendable, Equatable, Codable {
    /// The request is read and ignored.
    case noReply
    /// The reply comes this many milliseconds later than it should.
    case lateReply(milliseconds: Int)
    /// The reply's CRC is wrong.
    case crcError
    /// Random bytes go out instead of the reply.
    case junkBytes(count: Int)
    /// The reply goes out in two parts with a pause between them.
    case splitFrame(gapMilliseconds: Int)
    /// The unit answers with this Modbus exception code.
    case exception(code: UInt8)
    /// The link is dead (nothing read is answered) for this many milliseconds.
    case linkDrop(milliseconds: Int)
}

/// Which requests a queued bus fault waits for: a write-only fault makes one particular
/// command write fail while the polls around it go through, as a burst of noise can.
public enum FaultedRequests: String, Sendable, Equatable, Codable, CaseIterable {
    case any, reads, writes

    /// Whether a request with this Modbus function code is one this filter takes.
    func matches(functionCode: UInt8) -> Bool {
        switch self {
        case .any: return true
        case .writes: return Self.isWrite(functionCode)
        case .reads: return !Self.isWrite(functionCode)
        }
    }

    /// 5, 6, 15, 16 write; 23 reads and writes, so it counts as a write.
    private static func isWrite(_ functionCode: UInt8) -> Bool {
        switch functionCode {
        case 5, 6, 15, 16, 23: return true
        default: return false
        }
    }
}
