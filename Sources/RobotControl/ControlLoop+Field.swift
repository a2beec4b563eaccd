import FirmwareProtocol
import Foundation
import RobotIO

/// People and vehicles (protocol 1.1, H9; `docs/safety.md`, "People and vehicles"). The
/// firmware stops the chassis when something enters the protective field and never goes
/// on by itself; the controller:
/// - slows a straight move to `people.warningSpeedMetresPerSecond` while something is in
///   the warning field, and speeds it up again once the field has been clear a while;
/// - holds a move the firmware stopped, and sends its remainder once the protective field
///   has been clear for `people.resumeAfterClearMilliseconds` (slowly if the warning
///   field is still interrupted); the command's deadline waits with it;
/// - fails the move after `people.holdLimitSeconds` of waiting, so a scan pauses and the
///   officer is told instead of the robot waiting for ever;
/// - records every step as a `FieldEvent`.
extension ControlLoop {
    /// Reads the scanner's state from the chassis status (each tick, before commands).
    func watchFields(_ inputs: Inputs) {
        guard protocolFeatures.fieldScanner, let c = inputs.chassis else { return }
        let state: FieldScannerState = c.flags.contains(.fieldScannerFault) ? .fault
            : c.flags.contains(.fieldProtective) ? .protective : c.flags.contains(.fieldWarning) ? .warning : .clear
        if state == .fault && fieldWatch.scanner != .fault { recordField(.scannerFault, inputs) }
        if state != .fault && fieldWatch.scanner == .fault { recordField(.scannerRecovered, inputs) }
        fieldWatch.scanner = state
    }

    func recordField(_ kind: FieldEvent.Kind, _ inputs: Inputs) {
        let c = inputs.chassis
        let pose = (x: c?.positionXMetres ?? 0, y: c?.positionYMetres ?? 0, heading: c?.headingDegrees ?? 0,
                    speed: Double(c?.velocityMillimetresPerSecond ?? 0) / 1000)
        shared.lock()
        fieldWatch.record(kind, at: inputs.now, pose: pose)
        if kind == .protectiveStop { fieldWatch.protectiveStops += 1 }
        if kind == .slowed { fieldWatch.slowdowns += 1 }
        shared.unlock()
    }

    /// A new chassis command starts slow if the warning field is interrupted already.
    func fieldSpeed(for speed: Double) -> Double {
        fieldWatch.commandedSpeedMetresPerSecond = speed
        fieldWatch.clearSinceNanoseconds = 0
        fieldWatch.resumedAtNanoseconds = 0
        fieldWatch.resumePending = false
        let warning = fieldWatch.scanner == .warning || fieldWatch.scanner == .protective
        fieldWatch.slowed = protocolFeatures.fieldScanner && warning && speed > configuration.people.warningSpeedMetresPerSecond
        return fieldWatch.slowed ? configuration.people.warningSpeedMetresPerSecond : speed
    }

    /// The chassis channel while it moves: true when the fields took this tick's turn
    /// (a protective stop to hold, or a new speed posted).
    func fieldsTakeOver(_ channel: inout DriveChannel, status: DriveInput, _ inputs: Inputs) -> Bool {
        guard protocolFeatures.fieldScanner, channel.unit == RegisterMap.chassis.unitId, let c = inputs.chassis else { return false }
        // The hold ends when the move it sent has run for a while, or arrived, unstopped.
        if fieldWatch.resumePending && !c.flags.contains(.protectiveStop)
            && (inputs.now - fieldWatch.resumedAtNanoseconds >= FieldWatch.continuedHoldNanoseconds || (status.targetReached && !status.moving)) {
            fieldWatch.resumePending = false
            recordField(.resumed, inputs)
        }
        if c.flags.contains(.protectiveStop) {
            // H9.3: the set-point is gone; wait for standstill, then hold.
            if status.targetReached && !status.moving {
                // A stop soon after going on (the firmware refusing the remainder, H9.3,
                // or someone still there) continues the same hold, so its limit holds.
                let continuing = fieldWatch.resumedAtNanoseconds != 0
                    && inputs.now - fieldWatch.resumedAtNanoseconds < FieldWatch.continuedHoldNanoseconds
                if !continuing {
                    fieldWatch.heldSinceNanoseconds = inputs.now
                    fieldWatch.heldRemainingNanoseconds = channel.deadlineNanoseconds > inputs.now ? channel.deadlineNanoseconds - inputs.now : 0
                    recordField(.protectiveStop, inputs)
                }
                fieldWatch.clearSinceNanoseconds = 0
                channel.phase = .held
            }
            return true
        }
        // Slow down and speed up only on a straight run: not in a turn, not while arriving.
        let speed = Double(c.velocityMillimetresPerSecond) / 1000
        guard chassisTarget.mode == .moveRelative || chassisTarget.mode == .moveTo, abs(speed) > 0.02 else { return false }
        let policy = configuration.people
        let warning = c.flags.contains(.fieldWarning)
        if warning { fieldWatch.clearSinceNanoseconds = 0 }
        if !fieldWatch.slowed {
            guard warning, fieldWatch.commandedSpeedMetresPerSecond > policy.warningSpeedMetresPerSecond + 1e-9 else { return false }
            guard postRemainder(&channel, speed: policy.warningSpeedMetresPerSecond, inputs) else { return false }
            fieldWatch.slowed = true
            recordField(.slowed, inputs)
            return true
        }
        guard !warning else { return false }
        if fieldWatch.clearSinceNanoseconds == 0 { fieldWatch.clearSinceNanoseconds = inputs.now }
        guard inputs.now - fieldWatch.clearSinceNanoseconds >= UInt64(policy.speedUpAfterClearMilliseconds) * 1_000_000,
              postRemainder(&channel, speed: fieldWatch.commandedSpeedMetresPerSecond, inputs) else { return false }
        fieldWatch.slowed = false
        recordField(.spedUp, inputs)
        return true
    }

    /// A held move: go on when the protective field has stayed clear, give up at the limit.
    func advanceHeld(_ channel: inout DriveChannel, _ inputs: Inputs) {
        let policy = configuration.people
        let now = inputs.now
        channel.deadlineNanoseconds = now + fieldWatch.heldRemainingNanoseconds
        let clear = inputs.chassis.map { !$0.flags.contains(.fieldProtective) } ?? false
        if !clear {
            fieldWatch.clearSinceNanoseconds = 0
        } else if fieldWatch.clearSinceNanoseconds == 0 {
            fieldWatch.clearSinceNanoseconds = now
        }
        let heldSeconds = Double(now - fieldWatch.heldSinceNanoseconds) / 1e9
        if heldSeconds > policy.holdLimitSeconds {
            recordField(.gaveUp, inputs)
            fail(&channel, .heldByProtectiveField(seconds: heldSeconds))
            return
        }
        guard clear, now - fieldWatch.clearSinceNanoseconds >= UInt64(policy.resumeAfterClearMilliseconds) * 1_000_000 else { return }
        let warning = inputs.chassis?.flags.contains(.fieldWarning) ?? false
        fieldWatch.slowed = warning && fieldWatch.commandedSpeedMetresPerSecond > policy.warningSpeedMetresPerSecond
        let speed = fieldWatch.slowed ? policy.warningSpeedMetresPerSecond : fieldWatch.commandedSpeedMetresPerSecond
        if postRemainder(&channel, speed: speed, inputs) {
            fieldWatch.resumedAtNanoseconds = now
            fieldWatch.resumePending = true
        }
    }

    /// Posts what is left of the current chassis command at `speed`, with a new-set-point
    /// edge (D5.5 replaces a running set-point at once). The arrival check keeps the
    /// original target (`chassisTarget`). A straight move goes on as a relative move along
    /// the present heading, less what the chassis covers while the status ages, so a move
    /// that is still running does not first turn on the spot; a stopped turn goes on as a
    /// turn to its target heading. Going slower than commanded gives the move the time
    /// that costs (× 1.5, as its deadline was set), so a slow-down never times it out.
    func postRemainder(_ channel: inout DriveChannel, speed: Double, _ inputs: Inputs) -> Bool {
        guard let c = inputs.chassis, let sampledAt = inputs.chassisBlock?.sampledAtNanoseconds else { return false }
        let (mode, a, b) = chassisTarget
        let newMode: ChassisMode
        var targetA: Int32 = 0
        switch mode {
        case .moveRelative, .moveTo:
            let start = chassisStartPose.heading * .pi / 180
            let tx = mode == .moveTo ? a / 1000 : chassisStartPose.x + a / 1000 * cos(start)
            let ty = mode == .moveTo ? b / 1000 : chassisStartPose.y + a / 1000 * sin(start)
            let h = c.headingDegrees * .pi / 180
            let velocity = Double(c.velocityMillimetresPerSecond) / 1000
            let age = Double(inputs.now > sampledAt ? inputs.now - sampledAt : 0) / 1e9
            let remaining = (tx - c.positionXMetres) * cos(h) + (ty - c.positionYMetres) * sin(h) - velocity * age
            // Not worth a new set-point in the last few centimetres: the profile is ending.
            if velocity != 0 && abs(remaining) < 0.05 { return false }
            if mode == .moveTo && velocity == 0 {
                newMode = .moveTo
                targetA = Int32(a)
            } else {
                newMode = .moveRelative
                targetA = Int32((remaining * 1000).rounded())
            }
            let commanded = fieldWatch.commandedSpeedMetresPerSecond
            if speed < commanded, speed > 0 {
                let distance = mode == .moveTo && velocity == 0 ? hypot(tx - c.positionXMetres, ty - c.positionYMetres) : abs(remaining)
                channel.deadlineNanoseconds += UInt64(1.5 * distance * (1 / speed - 1 / commanded) * 1e9)
            }
        case .turnRelative, .turnTo:
            var heading = mode == .turnTo ? a / 100 : chassisStartPose.heading + a / 100
            heading = (heading + 180).truncatingRemainder(dividingBy: 360)
            if heading < 0 { heading += 360 }
            newMode = .turnTo
            targetA = Int32(((heading - 180) * 100).rounded())
        case .idle:
            return false
        }
        let command = chassisCommand(mode: newMode, a: targetA, b: newMode == .moveTo ? Int32(b) : 0, speed: speed)
        do {
            try command.encode(into: &channel.setpoint)
        } catch {
            return false
        }
        channel.postSetpoint(bus, controlword: Controlword.enableOperationCommand.union(.newSetpoint))
        channel.phase = .starting(sequence: channel.postedSequence)
        return true
    }

    /// The field events still held after `sequence` (0 for all), oldest first.
    public func fieldEvents(after sequence: UInt64 = 0) -> [FieldEvent] {
        shared.lock()
        defer { shared.unlock() }
        return fieldWatch.events.all { $0.sequence > sequence }
    }
}
