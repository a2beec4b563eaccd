import FirmwareProtocol
import Foundation

/// The chassis and the lift as `firmware-protocol/README.md` §5, §6 and §9 specify them.
/// Every write is decided first and applied second, so a refused write changes nothing
/// (F3.6); each `Deviation` brings back one pre-1.1 behaviour on purpose.
extension FirmwareModel {
    // MARK: Chassis

    func writeChassis(offset: Int, values: [UInt16]) -> ModbusException? {
        var image = chassisHolding
        for (i, v) in values.enumerated() { image[offset + i] = v }
        guard let command = try? ChassisCommand(registers: image) else { return .illegalDataValue }
        // D5.11: the per-mode limits of targetA are value checks (exception 3).
        if offset <= 3 && offset + values.count > 1 {
            let a = abs(Int64(command.targetA))
            if command.mode == .turnRelative && a > 36_000 || command.mode == .turnTo && a > 18_000 { return .illegalDataValue }
        }
        // A drive evaluates its controlword only when a write includes it.
        guard offset == 0 else {
            chassisHolding = image
            return nil
        }
        let word = command.controlword
        let edge = chassisDrive.isSetpointEdge(word)
        let bumperPressed = bumperFront || bumperForced
        let causeGone = deviant(.faultResetWithCause) || !(chassisDrive.faultCode == 5 && bumperPressed)
        let before = chassisDrive.state
        let after = chassisDrive.next(word, powerAvailable: motionPowerOn, faultCauseGone: causeGone)
        if edge && !setpointAccepted(word: word, before: before, after: after) {
            if deviant(.exceptionSideEffects) {
                chassisHolding = image
                chassisDrive.apply(word, powerAvailable: motionPowerOn, faultCauseGone: causeGone)
            }
            return .serverDeviceFailure
        }
        chassisHolding = image
        chassisDrive.apply(word, powerAvailable: motionPowerOn, faultCauseGone: causeGone)
        if before == .operationEnabled && !chassisDrive.isEnabled {
            // D5.2: leaving operation enabled stops the axis at the quick-stop deceleration.
            linear.acceleration = max(linear.acceleration, settings.chassisQuickStopMetresPerSecond2)
            angular.acceleration = max(angular.acceleration, settings.turnQuickStopDegreesPerSecond2 * .pi / 180)
            beginChassisStop()
        }
        if word.contains(.halt) && chassisDrive.isEnabled {
            if deviant(.haltInstant) { stopChassis() } else { beginChassisStop() }
        }
        if !word.contains(.newSetpoint) && !deviant(.setpointAckSticky) { chassisSetpointAck = false }
        guard edge else { return nil }
        startChassisSetpoint(command)
        return nil
    }

    /// D5.3: a new-set-point edge needs operation enabled before and after the write and
    /// halt clear (the deviations bring back the old, looser checks).
    func setpointAccepted(word: Controlword, before: DriveState, after: DriveState) -> Bool {
        let halted = word.contains(.halt) && !deviant(.haltInstant)
        if deviant(.enableWithSetpoint) { return after == .operationEnabled && !halted }
        return before == .operationEnabled && after == .operationEnabled && !halted
    }

    func startChassisSetpoint(_ command: ChassisCommand) {
        chassisSetpointAck = true
        protectiveStopLatched = false
        chassisStopping = false
        linear.maxSpeed = min(settings.chassisMaxSpeedMetresPerSecond, Double(command.speedMillimetresPerSecond) / 1000)
        linear.acceleration = min(settings.chassisAccelerationMetresPerSecond2, Double(command.accelerationMillimetresPerSecond2) / 1000)
        angular.maxSpeed = Double(command.turnRateCentidegreesPerSecond) / 100 * .pi / 180
        angular.acceleration = settings.turnAccelerationDegreesPerSecond2 * .pi / 180
        chassisSegments = []
        switch command.mode {
        case .idle:
            // D5.8: a stop set-point. Before 1.1 the chassis froze at its speed instead.
            if deviant(.idleEdgeFreezes) { return }
            beginChassisStop()
            return
        case .moveRelative:
            chassisSegments = [.drive(metres: Double(command.targetA) / 1000)]
        case .moveTo:
            // The target is in the reported frame; the robot drives in its odometry's.
            let (ox, oy) = odometryPoint(reportedX: Double(command.targetA) / 1000, reportedY: Double(command.targetB) / 1000)
            let dx = ox - trueX - odometryErrorX
            let dy = oy - trueY - odometryErrorY
            let distance = (dx * dx + dy * dy).squareRoot()
            if distance > 0.0005 {
                chassisSegments = [.turn(toRadians: atan2(dy, dx)), .drive(metres: distance)]
            }
        case .turnRelative:
            let radians = Double(command.targetA) / 100 * .pi / 180
            chassisSegments = [deviant(.shortWayTurn) ? .turn(toRadians: trueHeading + radians) : .turnBy(radians: radians)]
        case .turnTo:
            chassisSegments = [.turn(toRadians: Double(command.targetA) / 100 * .pi / 180 - frameRadians)]
        }
        chassisTargetReached = chassisSegments.isEmpty && linear.velocity == 0 && angular.velocity == 0
        beginNextSegment()
        checkNewSetpointAgainstField()
    }

    /// Decelerate to standstill and drop the target (halt, a stop set-point, leaving
    /// operation enabled); `targetReached` comes at standstill (D5.6, D5.7).
    func beginChassisStop() {
        chassisSegments = []
        linear.target = nil
        angular.target = nil
        chassisStopping = true
        if linear.velocity == 0 && angular.velocity == 0 {
            chassisStopping = false
            chassisTargetReached = true
        }
    }

    func beginNextSegment() {
        guard let segment = chassisSegments.first else { return }
        switch segment {
        case .turn(let target):
            // The short way round; exactly half a turn goes counter-clockwise (D5.11).
            var delta = (target - trueHeading).truncatingRemainder(dividingBy: 2 * .pi)
            if delta > .pi { delta -= 2 * .pi }
            if delta <= -.pi { delta += 2 * .pi }
            angular.position = trueHeading
            angular.target = trueHeading + delta
        case .turnBy(let radians):
            angular.position = trueHeading
            angular.target = trueHeading + radians
        case .drive(let metres):
            // The chassis drives until its odometry says `metres`: a long-reading odometry stops short.
            linear.position = 0
            linear.target = metres / (1 + settings.odometryScaleError)
        }
    }

    /// Stops at once: power cut (D5.10), a bumper, a fault.
    func stopChassis() {
        linear.halt()
        angular.halt()
        chassisSegments = []
        chassisStopping = false
    }

    func bumperHit() {
        bumperFront = true
        if chassisDrive.isEnabled && (linear.velocity != 0 || !chassisSegments.isEmpty) {
            chassisDrive.raiseFault(5)
        }
        stopChassis()
    }

    func stepChassis(_ dt: Double) {
        guard let segment = chassisSegments.first else {
            // No set-point: only a stop in progress moves the chassis, decelerating.
            if linear.velocity != 0 { moveChassis(linear.step(dt)) }
            if angular.velocity != 0 {
                angular.step(dt)
                trueHeading = angular.position
            }
            if linear.velocity == 0 && angular.velocity == 0 && chassisStopping {
                chassisStopping = false
                chassisTargetReached = true
            }
            if touchesContainer() { bumperHit() }
            return
        }
        switch segment {
        case .turn, .turnBy:
            angular.step(dt)
            trueHeading = angular.position
            if angular.target == nil {
                chassisSegments.removeFirst()
                beginNextSegment()
            }
            // A probe mounted off the reference point sweeps round as the robot turns.
            if settings.probeForwardMetres != 0 || settings.probeRightMetres != 0, touchesContainer() { bumperHit() }
        case .drive:
            moveChassis(linear.step(dt))
            if linear.target == nil {
                chassisSegments.removeFirst()
                beginNextSegment()
            }
            if touchesContainer() { bumperHit() }
        }
        if chassisSegments.isEmpty && linear.velocity == 0 && angular.velocity == 0 { chassisTargetReached = true }
    }

    func moveChassis(_ moved: Double) {
        trueX += moved * cos(trueHeading)
        trueY += moved * sin(trueHeading)
        odometer += abs(moved)
        odometryErrorX += moved * settings.odometryScaleError * cos(trueHeading)
        odometryErrorY += moved * settings.odometryScaleError * sin(trueHeading)
        let sigma = settings.odometryNoiseMetresPerMetre * (abs(moved)).squareRoot() * 0.03
        odometryErrorX += sigma * random.gaussian()
        odometryErrorY += sigma * random.gaussian()
    }

    /// The reference point or the probe head within the bumper margin of a container.
    func touchesContainer() -> Bool {
        let head = probe
        for container in field.containers {
            for (x, y) in [(trueX, trueY), (head.x, head.y)] {
                let (a, c, _) = container.local(x, y, 0)
                if container.contains(along: a, across: c, margin: settings.bumperMarginMetres) { return true }
            }
        }
        return false
    }

    // MARK: Pose (§9)

    /// The reported pose: the odometry (truth plus its drift) in the frame the last pose
    /// write or restart set.
    var reportedPose: (x: Double, y: Double, headingRadians: Double) {
        let ox = trueX + odometryErrorX, oy = trueY + odometryErrorY
        let c = cos(frameRadians), s = sin(frameRadians)
        return (c * ox - s * oy + frameX, s * ox + c * oy + frameY, trueHeading + frameRadians)
    }

    /// A reported-frame point in the odometry's frame.
    func odometryPoint(reportedX: Double, reportedY: Double) -> (Double, Double) {
        let dx = reportedX - frameX, dy = reportedY - frameY
        let c = cos(-frameRadians), s = sin(-frameRadians)
        return (c * dx - s * dy, s * dx + c * dy)
    }

    /// Sets the frame so the status reports exactly this pose now.
    func setPose(x: Double, y: Double, headingRadians: Double) {
        frameRadians = headingRadians - trueHeading
        let ox = trueX + odometryErrorX, oy = trueY + odometryErrorY
        let c = cos(frameRadians), s = sin(frameRadians)
        frameX = x - (c * ox - s * oy)
        frameY = y - (s * ox + c * oy)
    }

    /// Q9.2, Q9.3, F3.10: the whole block, at standstill, or nothing.
    func writePose(start: Int, values: [UInt16]) -> ModbusException? {
        guard start == Int(ChassisPose.spec.start), values.count == ChassisPose.spec.count,
              let pose = try? ChassisPose(registers: values) else { return .illegalDataValue }
        guard linear.velocity == 0, angular.velocity == 0, chassisSegments.isEmpty else { return .serverDeviceFailure }
        chassisPose = values
        setPose(x: Double(pose.xMillimetres) / 1000, y: Double(pose.yMillimetres) / 1000,
                headingRadians: Double(pose.headingCentidegrees) / 100 * .pi / 180)
        poseSet = true
        return nil
    }

    func chassisStatus() -> ChassisStatus {
        var flags: ChassisStatus.Flags = []
        if chassisTargetReached { flags.insert(.targetReached) }
        if bumperFront || bumperForced { flags.insert(.bumperFront) }
        if linear.velocity != 0 || angular.velocity != 0 { flags.insert(.moving) }
        if chassisSetpointAck { flags.insert(.setpointAcknowledged) }
        if poseSet && settings.protocolMinor >= 1 { flags.insert(.poseSet) }
        flags.formUnion(fieldFlags)
        let pose = reportedPose
        var headingDegrees = (pose.headingRadians * 180 / .pi).truncatingRemainder(dividingBy: 360)
        if headingDegrees > 180 { headingDegrees -= 360 }
        if headingDegrees < -180 { headingDegrees += 360 }
        return ChassisStatus(
            statusword: chassisDrive.statusword(targetReached: chassisTargetReached, setpointAcknowledged: chassisSetpointAck),
            flags: flags,
            positionXMillimetres: Int32(clamping: Int64((pose.x * 1000).rounded())),
            positionYMillimetres: Int32(clamping: Int64((pose.y * 1000).rounded())),
            headingCentidegrees: Int16(clamping: Int((headingDegrees * 100).rounded())),
            velocityMillimetresPerSecond: Int16(clamping: Int((linear.velocity * 1000).rounded())),
            odometerMillimetres: UInt32(truncatingIfNeeded: Int64(odometer * 1000)),
            faultCode: chassisDrive.faultCode)
    }
}
