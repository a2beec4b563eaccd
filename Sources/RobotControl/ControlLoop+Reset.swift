import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// The reset sequence: safety and fault-reset writes, the detector latch, then a check.
extension ControlLoop {
    // MARK: Reset

    /// How long a reset may take, from the command to the firmware's latch clearing.
    static let resetTimeoutNanoseconds: UInt64 = 2_000_000_000

    func advanceReset(_ inputs: Inputs) {
        guard reset.active else { return }
        // A write that fails after its retries is not sent again, so a reset waiting for it
        // would hang (holding its pulse high and its drive-fault checks off): past the
        // timeout the reset fails instead, and the officer can try again.
        let overdue = inputs.now &- reset.startedAt > Self.resetTimeoutNanoseconds
        // Each edge must reach the wire before the next level is posted. Only this reset's
        // own posts count: a write that failed before it (and is never sent again) must not
        // hold it, which is how a lost set-point write once made every later reset fail.
        let slotStatus = bus.status(of: safetySlot)
        let chassisSlot = bus.status(of: chassis.slot)
        let liftSlot = bus.status(of: lift.slot)
        if chassisSlot.failed(reset.chassisPosted) || liftSlot.failed(reset.liftPosted) {
            // The drives' edges are posted once per step: start the pulse again. (The safety
            // block is posted again by every watchdog refresh, with the same levels.)
            reset.step = 0
            reset.chassisPosted = 0
            reset.liftPosted = 0
        }
        // The detector's edge counts only while the detector answers, and a failed write of
        // it does not hold the reset up: a latch left set shows at the next measurement.
        let detectorLinked = (inputs.detectorBlock?.consecutiveFailures ?? 1) == 0
        let detectorSlot = bus.status(of: detectorControlSlot)
        let detectorDone = !detectorLinked || detectorSlot.landed(reset.detectorPosted) || detectorSlot.failed(reset.detectorPosted)
        guard slotStatus.landed(reset.waitingFor), chassisSlot.landed(reset.chassisPosted), liftSlot.landed(reset.liftPosted),
              detectorDone else {
            if overdue { finishReset(ok: false, inputs, writesPending: true) }
            return
        }
        switch reset.step {
        case 0:
            // Open edges: software e-stop off, reset low, fault-reset low, clearOverload low
            // (so the next step is a rising edge even if an earlier reset left it high).
            reset.pulse = false
            reset.waitingFor = postSafety(now: inputs.now)
            chassis.postIdle(bus, controlword: [])
            lift.postIdle(bus, controlword: [])
            reset.noteDrivePosts(chassis.postedSequence, lift.postedSequence)
            postDetectorEdge([.highVoltageOn], linked: detectorLinked)
            if lastYardPose != nil, let ch = inputs.chassis, !ch.flags.contains(.poseSet) { _ = postLastPose() }
            reset.step = 1
        case 1:
            reset.pulse = true
            reset.waitingFor = postSafety(now: inputs.now)
            chassis.postIdle(bus, controlword: .faultReset)
            lift.postIdle(bus, controlword: .faultReset)
            reset.noteDrivePosts(chassis.postedSequence, lift.postedSequence)
            // A rising edge of clearOverload clears the detector's overload latch (if the rate is back in range).
            postDetectorEdge([.highVoltageOn, .clearOverload], linked: detectorLinked)
            reset.step = 2
        case 2:
            reset.pulse = false
            reset.waitingFor = postSafety(now: inputs.now)
            chassis.postIdle(bus, controlword: [])
            lift.postIdle(bus, controlword: [])
            reset.noteDrivePosts(chassis.postedSequence, lift.postedSequence)
            postDetectorEdge([.highVoltageOn], linked: detectorLinked)
            reset.step = 3
            reset.checkAfter = slotStatus.sentAtNanoseconds
        default:
            guard let s = inputs.safety, let sb = inputs.safetyBlock, sb.sampledAtNanoseconds > reset.checkAfter &+ 30_000_000 else {
                if overdue { finishReset(ok: false, inputs) }
                return
            }
            let drivesOK = inputs.chassis?.driveState != .fault && inputs.lift?.driveState != .fault
            // W7.4: a reset is done only with the chain closed and the watchdog no longer
            // expired (a pre-1.1 firmware could clear the latch and leave the watchdog expired).
            let chainClosed = !s.flags.contains(.estopLatched) && !s.flags.contains(.watchdogExpired)
                && !s.flags.contains(.bootInterlock)
            let poseBack = lastYardPose == nil || inputs.chassis?.flags.contains(.poseSet) ?? true
            if chainClosed && drivesOK && poseBack {
                finishReset(ok: true, inputs)
            } else if overdue {
                finishReset(ok: false, inputs)
            }
        }
    }

    /// Posts one level of the detector's clearOverload pulse; not to a detector that is not
    /// answering, where each write would hold the bus for a response timeout.
    func postDetectorEdge(_ control: DetectorCommand.Control, linked: Bool) {
        guard linked else { return }
        reset.detectorPosted = postDetectorControl(control)
    }

    func finishReset(ok: Bool, _ inputs: Inputs, writesPending: Bool = false) {
        reset.active = false
        if ok {
            stopCause = nil
            mailbox.update(reset.commandId, .done)
        } else if let cause = detectCause(inputs) {
            mailbox.update(reset.commandId, .failed, problem: .causeStillPresent(cause))
        } else if writesPending {
            mailbox.update(reset.commandId, .failed, problem: .busError(
                "the reset's writes did not reach the firmware within \(Self.resetTimeoutNanoseconds / 1_000_000_000) s; check the link and reset again"))
        } else {
            mailbox.update(reset.commandId, .failed, problem: .causeStillPresent(stopCause ?? .watchdogExpired))
        }
    }
}

/// Progress of the reset sequence: three safety and fault-reset writes, then a check.
struct ResetSequence {
    var active = false
    var commandId: UInt64 = 0
    var step = 0
    var pulse = false
    var waitingFor: UInt64 = 0
    var detectorPosted: UInt64 = 0
    /// This reset's latest drive posts (0: none yet).
    var chassisPosted: UInt64 = 0
    var liftPosted: UInt64 = 0
    var startedAt: UInt64 = 0
    var checkAfter: UInt64 = 0

    mutating func noteDrivePosts(_ chassis: UInt64, _ lift: UInt64) {
        chassisPosted = chassis
        liftPosted = lift
    }

    mutating func begin(commandId: UInt64, now: UInt64) {
        self = ResetSequence()
        active = true
        self.commandId = commandId
        startedAt = now
    }
}
