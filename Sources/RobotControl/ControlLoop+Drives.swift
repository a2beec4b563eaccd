import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// The drive channels: set-point posted, acknowledged, moving, arrived (or failed).
extension ControlLoop {
    // MARK: Drives

    func advance(_ channel: inout DriveChannel, status: DriveInput?, _ inputs: Inputs) {
        guard channel.isBusy else { return }
        guard let status else {
            fail(&channel, .deviceUnavailable(device: channel.device))
            return
        }
        // A missed poll is not a lost drive: hold, and let the safety supervisor declare a
        // lost link after `lostLinkMissedPolls` (it stops the robot and names the device).
        // Failing the command at the first miss turned one CRC error into a failed walk.
        guard status.available else {
            // ...but never past the command's own deadline: that bound holds whatever the link.
            if inputs.now > channel.deadlineNanoseconds {
                fail(&channel, .timedOut(seconds: channel.allowedSeconds))
                channel.postIdle(bus, controlword: Controlword.enableOperationCommand.union(.halt))
            }
            return
        }
        if channel.phase == .held {
            advanceHeld(&channel, inputs)
            return
        }
        // One write in flight at a time, and act only on state sampled after it landed:
        // that keeps the CiA 402 edges and the one-step-per-write rule intact.
        let slotStatus = bus.status(of: channel.slot)
        if !slotStatus.landed(channel.postedSequence) {
            // A failed write is not sent again: waiting for it would stall the command for
            // ever. This command's own write failing fails it; an earlier command's is
            // forgotten, so a new command starts afresh instead of inheriting the failure.
            if slotStatus.failed(channel.postedSequence) {
                if channel.postedForCommand == channel.commandId {
                    fail(&channel, .busError("the \(channel.device) set-point write failed on the bus (\(slotStatus.lastError.map { "\($0)" } ?? "error")); send the command again"))
                    return
                }
                channel.postedSequence = 0
            } else {
                return
            }
        }
        guard status.sampledAt > slotStatus.sentAtNanoseconds else { return }
        if inputs.now > channel.deadlineNanoseconds {
            fail(&channel, .timedOut(seconds: channel.allowedSeconds))
            channel.postIdle(bus, controlword: Controlword.enableOperationCommand.union(.halt))
            return
        }
        switch channel.phase {
        case .idle, .held:
            return
        case .enabling:
            if status.state == .fault || status.state == .faultReactionActive {
                fail(&channel, .driveFault(device: channel.device, code: status.faultCode))
                return
            }
            if status.state == .operationEnabled {
                if channel.unit == RegisterMap.chassis.unitId, let c = inputs.chassis {
                    chassisStartPose = (c.positionXMetres, c.positionYMetres, c.headingDegrees)
                }
                channel.postSetpoint(bus, controlword: Controlword.enableOperationCommand.union(.newSetpoint))
                channel.phase = .starting(sequence: channel.postedSequence)
            } else if let step = Controlword.stepTowardsEnabled(from: status.state) {
                // Enabling never carries a set-point: the image goes out as idle.
                channel.postIdle(bus, controlword: step)
            }
        case .starting:
            // The edge is on the wire; drop bit 4 so the next set-point can make a new edge.
            channel.post(bus, controlword: .enableOperationCommand)
            channel.phase = .moving(sequence: channel.postedSequence)
        case .moving:
            if status.state != .operationEnabled {
                if status.state == .fault { fail(&channel, .driveFault(device: channel.device, code: status.faultCode)) }
                else { fail(&channel, .stopped(stopCause ?? .watchdogExpired)) }
                return
            }
            if fieldsTakeOver(&channel, status: status, inputs) { return }
            guard status.targetReached, !status.moving else { return }
            if let error = arrivalError(channel, inputs), error > toleranceFor(channel) {
                fail(&channel, .notArrived(errorMetres: error))
                return
            }
            mailbox.update(channel.commandId, .done)
            channel.phase = .idle
        }
    }

    func toleranceFor(_ channel: DriveChannel) -> Double {
        if channel.unit == RegisterMap.lift.unitId { return configuration.liftToleranceMetres }
        switch chassisTarget.mode {
        case .turnRelative, .turnTo: return configuration.headingToleranceDegrees
        default: return configuration.chassisToleranceMetres
        }
    }

    /// How far from its target the axis stopped (metres, or degrees for turns).
    func arrivalError(_ channel: DriveChannel, _ inputs: Inputs) -> Double? {
        if channel.unit == RegisterMap.lift.unitId {
            guard let l = inputs.lift, liftTarget.mode == .profilePosition else { return nil }
            return abs(Double(l.heightMillimetres) - Double(liftTarget.targetHeightMillimetres)) / 1000
        }
        guard let c = inputs.chassis else { return nil }
        let (mode, a, b) = chassisTarget
        switch mode {
        case .moveRelative:
            let h = chassisStartPose.heading * .pi / 180
            let tx = chassisStartPose.x + a / 1000 * cos(h)
            let ty = chassisStartPose.y + a / 1000 * sin(h)
            return ((c.positionXMetres - tx) * (c.positionXMetres - tx) + (c.positionYMetres - ty) * (c.positionYMetres - ty)).squareRoot()
        case .moveTo:
            let tx = a / 1000
            let ty = b / 1000
            return ((c.positionXMetres - tx) * (c.positionXMetres - tx) + (c.positionYMetres - ty) * (c.positionYMetres - ty)).squareRoot()
        case .turnRelative, .turnTo:
            let target = mode == .turnTo ? a / 100 : chassisStartPose.heading + a / 100
            var d = (c.headingDegrees - target).truncatingRemainder(dividingBy: 360)
            if d > 180 { d -= 360 }
            if d < -180 { d += 360 }
            return abs(d)
        case .idle:
            return nil
        }
    }

    func fail(_ channel: inout DriveChannel, _ problem: CommandProblem) {
        mailbox.update(channel.commandId, .failed, problem: problem)
        channel.phase = .idle
    }
}
