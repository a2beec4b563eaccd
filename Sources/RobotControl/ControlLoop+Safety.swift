import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// The safety supervisor: stop causes, tripping, and the watchdog and safety outputs.
extension ControlLoop {
    // MARK: Safety supervisor

    /// Keeps the last pose the chassis reported while it knew it (protocol 1.1 `poseSet`).
    ///
    /// A chassis that restarts while it moves stops where it was at the restart, which is
    /// up to one poll after the last pose it reported: at 0.5 m/s and a 20 ms poll 1 cm,
    /// but at a 200 ms poll (or a simulator run at 10×) 10 cm, and a turn at 90°/s 18°.
    /// So when the restart shows, the last pose is carried forward along the motion of the
    /// two samples before it to half a poll after the last one: the middle of the
    /// interval the restart happened in, which halves the worst error.
    func trackPose(_ inputs: Inputs) {
        guard protocolFeatures.chassisPose, let ch = inputs.chassis, let block = inputs.chassisBlock else { return }
        if ch.flags.contains(.poseSet) {
            guard block.consecutiveFailures == 0 else { return }
            lastYardPose = (ch.positionXMetres, ch.positionYMetres, ch.headingDegrees)
            yardPoseHistory.add(at: block.sampledAtNanoseconds, x: ch.positionXMetres, y: ch.positionYMetres, heading: ch.headingDegrees)
            return
        }
        guard lastYardPose != nil, !yardPoseHistory.restartCarried else { return }
        yardPoseHistory.restartCarried = true
        let half = UInt64(configuration.chassisPollMilliseconds) * 500_000
        if let carried = yardPoseHistory.carried(byNanoseconds: half) { lastYardPose = carried }
    }

    /// Gives a restarted chassis its last pose back (one write of the pose block). Built
    /// from the typed pose's fields, not its `registers()` array: the tick allocates nothing.
    func postLastPose() -> UInt64 {
        guard let last = lastYardPose else { return 0 }
        let pose = ChassisPose(xMetres: last.x, yMetres: last.y, headingDegrees: last.heading)
        let x = UInt32(bitPattern: pose.xMillimetres), y = UInt32(bitPattern: pose.yMillimetres)
        let heading = UInt16(bitPattern: pose.headingCentidegrees)
        return bus.post(poseSlot) { buffer in
            buffer[0] = UInt16(x >> 16)
            buffer[1] = UInt16(x & 0xFFFF)
            buffer[2] = UInt16(y >> 16)
            buffer[3] = UInt16(y & 0xFFFF)
            buffer[4] = heading
            return 5
        }
    }

    func supervise(_ inputs: Inputs) {
        if let cause = detectCause(inputs) { trip(cause, inputs) }
    }

    /// The first stop condition present now, if any.
    func detectCause(_ inputs: Inputs) -> StopCause? {
        let c = configuration
        let graceOver = inputs.now &- startedAtNanoseconds > 1_000_000_000
        if let lost = lostLink(.safety, inputs.safetyBlock, graceOver) { return lost }
        if let lost = lostLink(.chassis, inputs.chassisBlock, graceOver) { return lost }
        if let lost = lostLink(.lift, inputs.liftBlock, graceOver) { return lost }
        if let s = inputs.safety {
            if s.flags.contains(.estopButton) { return .hardwareEstop }
            if s.flags.contains(.watchdogExpired) && !reset.active { return .watchdogExpired }
            // W7.5: a safety unit that restarted holds its chain open until a reset.
            if s.flags.contains(.bootInterlock) && !reset.active { return .firmwareRestarted(device: .safety) }
        }
        // Q9.4: a chassis that had its pose and lost it has restarted; the reset gives it
        // back the last pose it reported (the restart stopped it there).
        if lastYardPose != nil, let ch = inputs.chassis, !ch.flags.contains(.poseSet), !reset.active {
            return .firmwareRestarted(device: .chassis)
        }
        let refresh = bus.status(of: safetySlot)
        if refresh.consecutiveFailures >= 3 {
            // Silence on the watchdog writes is a lost link to the safety unit; refusals
            // (exceptions) while the unit answers are a watchdog problem of their own.
            switch refresh.lastError {
            case .timeout?, .linkDown?, .crcMismatch?, .malformedReply?:
                return .lostLink(device: .safety, missedPolls: refresh.consecutiveFailures)
            default:
                return .watchdogWritesFailing
            }
        }
        if let ch = inputs.chassis, ch.flags.contains(.bumperFront) || ch.flags.contains(.bumperRear) { return .bumper }
        if let l = inputs.lift {
            let homing = lift.isBusy && liftTarget.mode == .homing
            if l.flags.contains(.upperLimit) { return .liftLimitSwitch(upper: true) }
            if l.flags.contains(.lowerLimit) && l.velocityMillimetresPerSecond < 0 && !homing { return .liftLimitSwitch(upper: false) }
            if l.flags.contains(.homed) {
                let h = Double(l.heightMillimetres) / 1000
                if h < c.liftMinimumMetres - 0.1 && !homing && l.heightMillimetres != 300 || h > c.liftMaximumMetres + 0.03 {
                    return .liftOutOfRange(heightMetres: h)
                }
            }
        }
        if !reset.active {
            if let ch = inputs.chassis, ch.driveState == .fault { return .driveFault(device: .chassis, code: ch.faultCode) }
            if let l = inputs.lift, l.driveState == .fault { return .driveFault(device: .lift, code: l.faultCode) }
        }
        if measurement.active, let d = inputs.detector, d.flags.contains(.overload) { return .detectorOverload }
        shared.lock()
        let armed = deadmanArmed
        let last = lastKeepAliveNanoseconds
        shared.unlock()
        if armed, inputs.now > last, Double(inputs.now - last) / 1e9 > c.deadmanTimeoutSeconds {
            return .deadman(secondsSinceKeepAlive: Double(inputs.now - last) / 1e9)
        }
        return nil
    }

    /// A lost-link cause if `block` has missed too many polls (or never arrived after the grace time).
    func lostLink(_ device: RobotDevice, _ block: PolledBlock?, _ graceOver: Bool) -> StopCause? {
        let limit = configuration.lostLinkMissedPolls
        if let block {
            return block.consecutiveFailures >= limit ? .lostLink(device: device, missedPolls: block.consecutiveFailures) : nil
        }
        return graceOver ? .lostLink(device: device, missedPolls: limit) : nil
    }

    /// Latches a stop: cuts power (immediate causes) or decelerates, and ends motion commands.
    func trip(_ cause: StopCause, _ inputs: Inputs) {
        guard stopCause == nil || cause == .softwareEstop && stopCause != .softwareEstop else { return }
        stopCause = cause
        if cause.isImmediate { softwareEstopRequested = true }
        haltAxes()
        if chassis.isBusy { mailbox.update(chassis.commandId, .failed, problem: .stopped(cause)) }
        if lift.isBusy { mailbox.update(lift.commandId, .failed, problem: .stopped(cause)) }
        chassis.phase = .idle
        lift.phase = .idle
        if measurement.active {
            mailbox.update(measurement.commandId, .failed, problem: .stopped(cause))
            measurement.active = false
        }
        if cause.isImmediate { postSafety(now: inputs.now) }
        if case .deadman = cause {
            shared.lock()
            deadmanArmed = false
            shared.unlock()
        }
    }

    /// A stop cause that is still there (button still pressed, link still down).
    func causeStillPresent(_ inputs: Inputs) -> StopCause? {
        let saved = stopCause
        stopCause = nil
        defer { stopCause = saved }
        guard let cause = detectCause(inputs) else { return nil }
        switch cause {
        // Cleared by the reset itself: its refresh and edge, its fault-reset pulse, and (a
        // restarted unit) its edge that releases the interlock or the pose it writes back.
        case .watchdogExpired, .driveFault, .firmwareRestarted: return nil
        default: return cause
        }
    }

    // MARK: Watchdog and safety outputs

    func refreshWatchdog(now: UInt64) {
        let period = UInt64(configuration.watchdogRefreshMilliseconds) * 1_000_000
        if now &- lastRefreshNanoseconds >= period {
            postSafety(now: now)
        }
    }

    /// Posts the safety block: a fresh watchdog token, the timeout, and the outputs the
    /// loop's state calls for. Every post refreshes the watchdog.
    @discardableResult
    func postSafety(now: UInt64) -> UInt64 {
        watchdogToken &+= 1
        lastRefreshNanoseconds = now
        var outputs: SafetyCommand.Outputs = []
        if softwareEstopRequested { outputs.insert(.softwareEstop) }
        if reset.active && reset.pulse { outputs.insert(.estopReset) }
        if chassis.isBusy || lift.isBusy { outputs.insert(.beacon) }
        let token = watchdogToken
        let timeout = configuration.watchdogTimeoutMilliseconds
        return bus.post(safetySlot) { buffer in
            buffer[0] = token
            buffer[1] = timeout
            buffer[2] = outputs.rawValue
            return 3
        }
    }

    func postDetectorControl(_ control: DetectorCommand.Control) -> UInt64 {
        bus.post(detectorControlSlot) { buffer in
            buffer[0] = control.rawValue
            return 1
        }
    }
}

/// The two newest yard poses the chassis reported, and when, to carry the pose forward
/// to a restart (`ControlLoop.trackPose`). Plain values: the tick allocates nothing.
struct YardPoseHistory {
    struct Sample {
        var at: UInt64
        var x: Double, y: Double, heading: Double
    }
    var previous: Sample?
    var last: Sample?
    var restartCarried = false

    mutating func add(at: UInt64, x: Double, y: Double, heading: Double) {
        restartCarried = false
        guard at != last?.at else { return }
        previous = last
        last = Sample(at: at, x: x, y: y, heading: heading)
    }

    /// The last pose moved on by `nanoseconds` at the rate between the two samples; nil
    /// without two samples close enough together (a gap in the polls says nothing of the rate).
    func carried(byNanoseconds nanoseconds: UInt64) -> (x: Double, y: Double, heading: Double)? {
        // More than four polls between them (8 half-polls) is a gap, not a rate.
        guard let previous, let last, last.at > previous.at, last.at - previous.at <= 8 * max(nanoseconds, 1) else { return nil }
        let f = Double(nanoseconds) / Double(last.at - previous.at)
        var turned = last.heading - previous.heading
        if turned > 180 { turned -= 360 }
        if turned < -180 { turned += 360 }
        var heading = last.heading + f * turned
        if heading > 180 { heading -= 360 }
        if heading < -180 { heading += 360 }
        return (last.x + f * (last.x - previous.x), last.y + f * (last.y - previous.y), heading)
    }
}
