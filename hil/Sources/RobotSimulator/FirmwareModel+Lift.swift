import FirmwareProtocol
import Foundation

/// The lift as `firmware-protocol/README.md` §5 and §6 specify it: limit switches outside
/// the set-point range (L6.1), fault 3 when one closes outside homing (L6.2), homing to
/// the lower switch and back off it (L6.3).
extension FirmwareModel {
    func writeLift(offset: Int, values: [UInt16]) -> ModbusException? {
        var image = liftHolding
        for (i, v) in values.enumerated() { image[offset + i] = v }
        guard let command = try? LiftCommand(registers: image) else {
            // Only reachable with `invalidModeStored`: before 1.1 an undefined mode was
            // stored, and every later controlword write failed to decode.
            if deviant(.invalidModeStored) { liftHolding = image }
            return .illegalDataValue
        }
        guard offset == 0 else {
            liftHolding = image
            return nil
        }
        let word = command.controlword
        let edge = liftDrive.isSetpointEdge(word)
        let before = liftDrive.state
        let after = liftDrive.next(word, powerAvailable: motionPowerOn)
        let homedEnough = command.mode != .profilePosition || homed
        if edge && !(setpointAccepted(word: word, before: before, after: after) && homedEnough) {
            if deviant(.exceptionSideEffects) {
                liftHolding = image
                liftDrive.apply(word, powerAvailable: motionPowerOn)
            }
            return .serverDeviceFailure
        }
        liftHolding = image
        liftDrive.apply(word, powerAvailable: motionPowerOn)
        if before == .operationEnabled && !liftDrive.isEnabled {
            // D5.2: the lift decelerates to standstill (and its brake holds it). Before 1.1
            // it froze with its speed still reported, and coasted on re-enable.
            lift.target = nil
            homing = false
            homingBackOff = false
            lift.acceleration = settings.liftAccelerationMetresPerSecond2
            liftStopping = !deviant(.disableCoasts)
        }
        if word.contains(.halt) && liftDrive.isEnabled {
            lift.target = nil
            homing = false
            homingBackOff = false
            liftStopping = true
        }
        if !word.contains(.newSetpoint) && !deviant(.setpointAckSticky) { liftSetpointAck = false }
        guard edge else { return nil }
        switch command.mode {
        case .idle:
            // D5.8: a stop set-point (before 1.1 the lift ignored it).
            if deviant(.idleEdgeFreezes) { return nil }
            lift.target = nil
            homing = false
            homingBackOff = false
            liftStopping = true
        case .homing:
            // L6.3: the command's target, speed and acceleration do not apply.
            homing = true
            homed = false
            homingBackOff = false
            lift.maxSpeed = settings.liftHomingSpeedMetresPerSecond
            lift.acceleration = settings.liftAccelerationMetresPerSecond2
            lift.target = deviant(.homingEndsAtSwitch) ? settings.liftMinimumMetres : settings.liftLowerSwitchMetres
        case .profilePosition:
            homing = false
            lift.maxSpeed = min(settings.liftMaxSpeedMetresPerSecond, Double(command.speedMillimetresPerSecond) / 1000)
            lift.acceleration = min(settings.liftAccelerationMetresPerSecond2, Double(command.accelerationMillimetresPerSecond2) / 1000)
            lift.target = Double(command.targetHeightMillimetres) / 1000
        }
        liftSetpointAck = true
        liftTargetReached = false
        liftStopping = false
        return nil
    }

    func stepLift(_ dt: Double) {
        guard lift.isMoving else { return }
        if liftStuck && lift.target != nil {
            lift.velocity = 0
            liftStuckSeconds += dt
            if liftStuckSeconds > 0.5 {
                liftDrive.raiseFault(2)
                lift.halt()
                homing = false
            }
            return
        }
        lift.step(dt)
        checkLimitSwitches()
        guard lift.target == nil else { return }
        if homing && !homingBackOff && !deviant(.homingEndsAtSwitch) {
            // At the lower switch: it defines 0.290 m; back off to the bottom of travel.
            homingBackOff = true
            lift.position = settings.liftLowerSwitchMetres
            lift.target = settings.liftMinimumMetres
            return
        }
        if homing && lift.velocity == 0 {
            homing = false
            homingBackOff = false
            homed = true
        }
        // D5.6: target reached at standstill (before 1.1 a halted lift said so at once).
        if lift.velocity == 0 || deviant(.haltInstant) {
            liftTargetReached = true
            liftStopping = false
        }
    }

    var lowerSwitchClosed: Bool {
        let at = deviant(.homingEndsAtSwitch) ? settings.liftMinimumMetres : settings.liftLowerSwitchMetres
        return lowerSwitchForced || lift.position <= at + 0.0005
    }

    var upperSwitchClosed: Bool {
        let at = deviant(.homingEndsAtSwitch) ? settings.liftMaximumMetres : settings.liftUpperSwitchMetres
        return upperSwitchForced || lift.position >= at - 0.0005
    }

    /// L6.2: a switch closing outside homing is fault 3, and the lift stops at once.
    func checkLimitSwitches() {
        let lower = lowerSwitchClosed, upper = upperSwitchClosed
        let closed = (lower && !lowerSwitchWasClosed) || (upper && !upperSwitchWasClosed)
        lowerSwitchWasClosed = lower
        upperSwitchWasClosed = upper
        guard closed, !homing, !deviant(.noLimitFault) else { return }
        liftDrive.raiseFault(3)
        lift.halt()
        liftStopping = false
        liftTargetReached = true
    }

    func liftStatus() -> LiftStatus {
        var flags: LiftStatus.Flags = []
        if homed { flags.insert(.homed) }
        if lowerSwitchClosed { flags.insert(.lowerLimit) }
        if upperSwitchClosed { flags.insert(.upperLimit) }
        if liftTargetReached { flags.insert(.targetReached) }
        if lift.velocity != 0 { flags.insert(.moving) }
        if liftSetpointAck { flags.insert(.setpointAcknowledged) }
        // Until homed the encoder has no zero, so the firmware reports 0 (L6.4).
        let height = homed ? UInt16(clamping: Int((lift.position * 1000).rounded())) : 0
        return LiftStatus(
            statusword: liftDrive.statusword(targetReached: liftTargetReached, setpointAcknowledged: liftSetpointAck),
            flags: flags, heightMillimetres: height,
            velocityMillimetresPerSecond: Int16(clamping: Int((lift.velocity * 1000).rounded())),
            faultCode: liftDrive.faultCode)
    }
}
