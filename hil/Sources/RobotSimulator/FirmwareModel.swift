import FirmwareProtocol
import Foundation

/// The robot's firmware and physics: four Modbus units backed by a chassis, a lift,
/// a detector and a safety controller moving in a simulated yard.
///
/// Thread-safe: every entry point takes the model's lock, so the server thread and
/// the physics thread can share it.
public final class FirmwareModel: @unchecked Sendable {
    public static let stepSeconds = 0.005

    private let lock = NSLock()
    public let settings: RobotSettings
    private var field: RadiationField
    private var random: SeededRandom
    public private(set) var simulatedSeconds = 0.0
    private var bootSeconds = 0.0

    // Safety controller.
    private var estopButton = false
    private var estopLatched = false
    private var softwareEstop = false
    private var watchdogRunning = false
    private var watchdogExpired = false
    private var lastWatchdogToken: UInt16 = 0
    private var lastRefreshSeconds = 0.0
    private var previousOutputs: SafetyCommand.Outputs = []
    private var safetyHolding: [UInt16] = [0, 500, 0]

    /// CLOCK_MONOTONIC time the last software e-stop write arrived, for latency benchmarks.
    public private(set) var lastSoftwareEstopArrivalNanoseconds: UInt64 = 0

    // Chassis.
    private var chassisDrive = DriveStateMachine()
    private var chassisHolding: [UInt16]
    private var trueX: Double
    private var trueY: Double
    private var trueHeading: Double
    private var odometryErrorX = 0.0
    private var odometryErrorY = 0.0
    private var odometer = 0.0
    private var linear: AxisProfile
    private var angular: AxisProfile
    private var chassisSegments: [ChassisSegment] = []
    private var chassisTargetReached = true
    private var chassisSetpointAck = false
    private var bumperFront = false
    private var bumperForced = false

    // Lift.
    private var liftDrive = DriveStateMachine()
    private var liftHolding: [UInt16]
    private var lift: AxisProfile
    private var homed = false
    private var homing = false
    private var liftStuck = false
    private var liftStuckSeconds = 0.0
    private var liftTargetReached = true
    private var liftSetpointAck = false

    // Detector.
    /// Boot defaults: high voltage on, alarm threshold 250 nSv/h (set in `init`).
    private var detectorHolding: [UInt16]
    private var counts: UInt32 = 0
    private var filteredMicrosievertsPerHour: Double
    private var overloadLatched = false
    private var cachedEffectKey: (Int, Int, Int)?
    /// A check source in its holder on the probe (0 when none).
    private var checkSourceMicrosievertsPerHour = 0.0
    private var battery: BatteryModel
    private var cachedEffect: (ground: Double, sky: Double, norm: Double)?
    private var overloadForced = false
    private var detectorDead = false
    private var silentSeconds = 0.0
    private var previousDetectorControl: DetectorCommand.Control = [.highVoltageOn]

    private enum ChassisSegment: Equatable {
        case turn(toRadians: Double)
        case drive(metres: Double)
    }

    public init(settings: RobotSettings = RobotSettings(), field: RadiationField = RadiationField(),
                seed: UInt64 = 1, startX: Double = 0, startY: Double = 0, startHeadingDegrees: Double = 0,
                startLiftMetres: Double = 1.0) {
        self.settings = settings
        self.field = field
        self.random = SeededRandom(seed: seed)
        battery = BatteryModel(settings: settings.battery)
        trueX = startX
        trueY = startY
        trueHeading = startHeadingDegrees * .pi / 180
        linear = AxisProfile(position: 0, maxSpeed: settings.chassisMaxSpeedMetresPerSecond,
                             acceleration: settings.chassisAccelerationMetresPerSecond2)
        angular = AxisProfile(position: trueHeading, maxSpeed: .pi / 2,
                              acceleration: settings.turnAccelerationDegreesPerSecond2 * .pi / 180)
        lift = AxisProfile(position: startLiftMetres, maxSpeed: settings.liftMaxSpeedMetresPerSecond,
                           acceleration: settings.liftAccelerationMetresPerSecond2)
        chassisHolding = (try? ChassisCommand(controlword: [], mode: .idle).registers()) ?? []
        liftHolding = (try? LiftCommand(controlword: [], mode: .idle).registers()) ?? []
        filteredMicrosievertsPerHour = field.background(atSeconds: 0)
        let alarmNanosievertsPerHour: UInt32 = 250
        detectorHolding = [DetectorCommand.Control.highVoltageOn.rawValue, UInt16(alarmNanosievertsPerHour >> 16),
                           UInt16(alarmNanosievertsPerHour & 0xFFFF)]
    }

    // MARK: Observation (tests and the control socket)

    /// The robot's true state, for tests and the rig operator; the controller only sees registers.
    public struct Truth: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public var headingDegrees: Double
        public var speedMetresPerSecond: Double
        public var liftMetres: Double
        public var liftSpeedMetresPerSecond: Double
        public var motionPowerOn: Bool
        public var doseRateMicrosievertsPerHour: Double
        public var chassisState: DriveState
        public var liftState: DriveState
        public var simulatedSeconds: Double
        /// Where the probe is (`RobotSettings.probeForwardMetres` …), in the yard.
        public var probeX: Double
        public var probeY: Double
        public var probeZ: Double
        /// The battery's exact charge, and the energy drawn since the start, joules.
        public var batteryChargePercent: Double
        public var batteryJoulesDrawn: Double
    }

    public var softwareEstopArrivalNanoseconds: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return lastSoftwareEstopArrivalNanoseconds
    }

    public func truth() -> Truth {
        lock.lock()
        defer { lock.unlock() }
        return Truth(x: trueX, y: trueY, headingDegrees: trueHeading * 180 / .pi, speedMetresPerSecond: linear.velocity,
                     liftMetres: lift.position, liftSpeedMetresPerSecond: lift.velocity, motionPowerOn: motionPowerOn,
                     doseRateMicrosievertsPerHour: trueDoseRate(), chassisState: chassisDrive.state,
                     liftState: liftDrive.state, simulatedSeconds: simulatedSeconds,
                     probeX: probe.x, probeY: probe.y, probeZ: probe.z,
                     batteryChargePercent: battery.chargePercent, batteryJoulesDrawn: battery.joulesDrawn)
    }

    /// The probe's true position: the reference point plus the mount, turned by the heading.
    private var probe: (x: Double, y: Double, z: Double) {
        let f = settings.probeForwardMetres, r = settings.probeRightMetres
        return (trueX + f * cos(trueHeading) + r * sin(trueHeading), trueY + f * sin(trueHeading) - r * cos(trueHeading),
                lift.position + settings.probeUpMetres)
    }

    public var radiationField: RadiationField {
        lock.lock()
        defer { lock.unlock() }
        return field
    }

    // MARK: Faults

    public func inject(_ fault: DeviceFault) {
        lock.lock()
        defer { lock.unlock() }
        switch fault {
        case .reboot:
            chassisDrive.reboot()
            liftDrive.reboot()
            homed = false
            homing = false
            watchdogRunning = false
            watchdogExpired = false
            estopLatched = estopButton
            softwareEstop = false
            counts = 0
            bootSeconds = simulatedSeconds
            stopAllMotion()
        case let .driveFault(device, code):
            if device == "lift" {
                liftDrive.raiseFault(code)
                lift.halt()
                lift.target = nil
            } else {
                chassisDrive.raiseFault(code)
                stopChassis()
            }
        case .liftStuck(let on):
            liftStuck = on
            liftStuckSeconds = 0
        case .estopButton(let pressed):
            estopButton = pressed
            if pressed { latchEstop() }
        case .detectorOverload(let on):
            overloadForced = on
            if on { overloadLatched = true }
        case .detectorDead(let on):
            detectorDead = on
        case .bumper(let pressed):
            bumperForced = pressed
            if pressed { bumperHit() }
        case .checkSource(let dose):
            checkSourceMicrosievertsPerHour = max(0, dose)
        case .batteryCharge(let percent):
            battery.set(chargePercent: percent)
        }
    }

    // MARK: Modbus access

    /// The registers for a read, or the exception the firmware answers with.
    public func read(unit: UInt8, table: RegisterTable, start: Int, count: Int) -> Result<[UInt16], ModbusException> {
        guard let device = RegisterMap.device(unitId: unit) else { return .failure(.illegalDataAddress) }
        if let problem = device.check(table: table, start: start, count: count, values: nil) {
            return .failure(Self.exception(for: problem))
        }
        guard let block = device.block(containing: start, count: count, in: table) else { return .failure(.illegalDataAddress) }
        lock.lock()
        defer { lock.unlock() }
        let image = blockImage(device: device, block: block)
        let from = start - Int(block.start)
        return .success(Array(image[from..<(from + count)]))
    }

    /// Applies a write, or returns the exception the firmware answers with.
    public func write(unit: UInt8, start: Int, values: [UInt16]) -> ModbusException? {
        guard let device = RegisterMap.device(unitId: unit) else { return .illegalDataAddress }
        if let problem = device.check(table: .holding, start: start, count: values.count, values: values) {
            return Self.exception(for: problem)
        }
        lock.lock()
        defer { lock.unlock() }
        let offset = start - Int(RegisterMap.statusStart)
        switch device.unitId {
        case RegisterMap.safety.unitId:
            for (i, v) in values.enumerated() { safetyHolding[offset + i] = v }
            return applySafetyCommand()
        case RegisterMap.chassis.unitId:
            for (i, v) in values.enumerated() { chassisHolding[offset + i] = v }
            return offset == 0 ? applyChassisControlword() : nil
        case RegisterMap.lift.unitId:
            for (i, v) in values.enumerated() { liftHolding[offset + i] = v }
            return offset == 0 ? applyLiftControlword() : nil
        case RegisterMap.detector.unitId:
            for (i, v) in values.enumerated() { detectorHolding[offset + i] = v }
            applyDetectorCommand()
            return nil
        default:
            return .illegalDataAddress
        }
    }

    static func exception(for problem: DeviceSpec.RequestProblem) -> ModbusException {
        switch problem {
        case .unknownRegister: return .illegalDataAddress
        case .badCount, .valueOutOfRange: return .illegalDataValue
        }
    }

    private func blockImage(device: DeviceSpec, block: BlockSpec) -> [UInt16] {
        if block.table == .holding {
            switch device.unitId {
            case RegisterMap.safety.unitId: return safetyHolding
            case RegisterMap.chassis.unitId: return chassisHolding
            case RegisterMap.lift.unitId: return liftHolding
            default: return detectorHolding
            }
        }
        let encoded: [UInt16]?
        switch (device.unitId, block.name) {
        case (_, "identity"):
            encoded = try? IdentityBlock(protocolVersion: .current, deviceType: device.deviceType,
                                         firmwareVersion: settings.firmwareVersion).registers()
        case (RegisterMap.safety.unitId, _): encoded = try? safetyStatus().registers()
        case (RegisterMap.chassis.unitId, _): encoded = try? chassisStatus().registers()
        case (RegisterMap.lift.unitId, _): encoded = try? liftStatus().registers()
        case (RegisterMap.detector.unitId, "info"): encoded = try? detectorInfo().registers()
        default: encoded = try? detectorStatus().registers()
        }
        return encoded ?? [UInt16](repeating: 0, count: block.count)
    }

    // MARK: Safety controller

    private var motionPowerOn: Bool { !estopLatched && watchdogRunning && !watchdogExpired && !battery.empty }

    private func latchEstop() {
        estopLatched = true
        stopAllMotion()
    }

    private func stopAllMotion() {
        chassisDrive.powerLost()
        liftDrive.powerLost()
        stopChassis()
        lift.halt()
        homing = false
    }

    private func applySafetyCommand() -> ModbusException? {
        guard let command = try? SafetyCommand(registers: safetyHolding) else { return .illegalDataValue }
        if command.watchdogToken != lastWatchdogToken {
            lastWatchdogToken = command.watchdogToken
            lastRefreshSeconds = simulatedSeconds
            watchdogRunning = true
        }
        let wasSoftwareEstop = softwareEstop
        softwareEstop = command.outputs.contains(.softwareEstop)
        if softwareEstop && !wasSoftwareEstop {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            lastSoftwareEstopArrivalNanoseconds = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        }
        if softwareEstop { latchEstop() }
        let resetEdge = command.outputs.contains(.estopReset) && !previousOutputs.contains(.estopReset)
        previousOutputs = command.outputs
        if resetEdge && !estopButton && !softwareEstop {
            estopLatched = false
            if watchdogRunning && simulatedSeconds - lastRefreshSeconds < Double(command.watchdogTimeoutMilliseconds) / 1000 {
                watchdogExpired = false
            }
        }
        return nil
    }

    private func safetyStatus() -> SafetyStatus {
        var flags: SafetyStatus.Flags = []
        if estopButton { flags.insert(.estopButton) }
        if estopLatched { flags.insert(.estopLatched) }
        if watchdogExpired { flags.insert(.watchdogExpired) }
        if motionPowerOn { flags.insert(.motionPowerOn) }
        if softwareEstop { flags.insert(.softwareEstop) }
        let outputs = SafetyCommand.Outputs(rawValue: safetyHolding[2])
        if outputs.contains(.beacon) { flags.insert(.beaconOn) }
        if outputs.contains(.buzzer) { flags.insert(.buzzerOn) }
        let timeout = Double(safetyHolding[1]) / 1000
        let remaining = watchdogRunning ? max(0, timeout - (simulatedSeconds - lastRefreshSeconds)) : 0
        let uptime = UInt32(truncatingIfNeeded: UInt64(max(0, (simulatedSeconds - bootSeconds) * 1000)))
        return SafetyStatus(flags: flags, watchdogRemainingMilliseconds: UInt16(min(65535, remaining * 1000)),
                            batteryCentivolts: battery.centivolts, batteryChargePercent: battery.reportedPercent,
                            uptimeMilliseconds: uptime)
    }

    // MARK: Chassis

    private func applyChassisControlword() -> ModbusException? {
        guard let command = try? ChassisCommand(registers: chassisHolding) else { return .illegalDataValue }
        let wasEnabled = chassisDrive.isEnabled
        let start = chassisDrive.apply(command.controlword, powerAvailable: motionPowerOn)
        if !chassisDrive.isEnabled && wasEnabled { stopChassis() }
        if command.controlword.contains(.halt) { stopChassis() }
        if command.controlword.contains(.newSetpoint) && !start && chassisDrive.state != .operationEnabled {
            return .serverDeviceFailure
        }
        guard start else { return nil }
        chassisSegments = []
        switch command.mode {
        case .idle:
            return nil
        case .moveRelative:
            chassisSegments = [.drive(metres: Double(command.targetA) / 1000)]
        case .moveTo:
            let dx = Double(command.targetA) / 1000 - trueX - odometryErrorX
            let dy = Double(command.targetB) / 1000 - trueY - odometryErrorY
            let distance = (dx * dx + dy * dy).squareRoot()
            if distance > 0.0005 {
                chassisSegments = [.turn(toRadians: atan2(dy, dx)), .drive(metres: distance)]
            }
        case .turnRelative:
            chassisSegments = [.turn(toRadians: trueHeading + Double(command.targetA) / 100 * .pi / 180)]
        case .turnTo:
            chassisSegments = [.turn(toRadians: Double(command.targetA) / 100 * .pi / 180)]
        }
        linear.maxSpeed = min(settings.chassisMaxSpeedMetresPerSecond, Double(command.speedMillimetresPerSecond) / 1000)
        linear.acceleration = min(settings.chassisAccelerationMetresPerSecond2, Double(command.accelerationMillimetresPerSecond2) / 1000)
        angular.maxSpeed = Double(command.turnRateCentidegreesPerSecond) / 100 * .pi / 180
        chassisSetpointAck = true
        chassisTargetReached = chassisSegments.isEmpty
        beginNextSegment()
        return nil
    }

    private func beginNextSegment() {
        guard let segment = chassisSegments.first else { return }
        switch segment {
        case .turn(let target):
            // Turn the short way round.
            var delta = (target - trueHeading).truncatingRemainder(dividingBy: 2 * .pi)
            if delta > .pi { delta -= 2 * .pi }
            if delta < -.pi { delta += 2 * .pi }
            angular.position = trueHeading
            angular.target = trueHeading + delta
        case .drive(let metres):
            linear.position = 0
            linear.target = metres
        }
    }

    private func stopChassis() {
        linear.halt()
        angular.halt()
        chassisSegments = []
    }

    private func bumperHit() {
        bumperFront = true
        if chassisDrive.isEnabled && (linear.velocity != 0 || !chassisSegments.isEmpty) {
            chassisDrive.raiseFault(5)
        }
        stopChassis()
    }

    private func stepChassis(_ dt: Double) {
        guard let segment = chassisSegments.first else { return }
        switch segment {
        case .turn:
            angular.step(dt)
            trueHeading = angular.position
            if angular.target == nil {
                chassisSegments.removeFirst()
                beginNextSegment()
            }
            // A probe mounted off the reference point sweeps round as the robot turns.
            if settings.probeForwardMetres != 0 || settings.probeRightMetres != 0, touchesContainer() { bumperHit() }
        case .drive:
            let moved = linear.step(dt)
            trueX += moved * cos(trueHeading)
            trueY += moved * sin(trueHeading)
            odometer += abs(moved)
            let sigma = settings.odometryNoiseMetresPerMetre * (abs(moved)).squareRoot() * 0.03
            odometryErrorX += sigma * random.gaussian()
            odometryErrorY += sigma * random.gaussian()
            if linear.target == nil {
                chassisSegments.removeFirst()
                beginNextSegment()
            }
            if touchesContainer() { bumperHit() }
        }
        if chassisSegments.isEmpty { chassisTargetReached = true }
    }

    /// The reference point or the probe head within the bumper margin of a container.
    private func touchesContainer() -> Bool {
        let head = probe
        for container in field.containers {
            for (x, y) in [(trueX, trueY), (head.x, head.y)] {
                let (a, c, _) = container.local(x, y, 0)
                if container.contains(along: a, across: c, margin: settings.bumperMarginMetres) { return true }
            }
        }
        return false
    }

    private func chassisStatus() -> ChassisStatus {
        var flags: ChassisStatus.Flags = []
        if chassisTargetReached { flags.insert(.targetReached) }
        if bumperFront || bumperForced { flags.insert(.bumperFront) }
        if linear.velocity != 0 || angular.velocity != 0 { flags.insert(.moving) }
        if chassisSetpointAck { flags.insert(.setpointAcknowledged) }
        var headingDegrees = (trueHeading * 180 / .pi).truncatingRemainder(dividingBy: 360)
        if headingDegrees > 180 { headingDegrees -= 360 }
        if headingDegrees < -180 { headingDegrees += 360 }
        return ChassisStatus(
            statusword: chassisDrive.statusword(targetReached: chassisTargetReached, setpointAcknowledged: chassisSetpointAck),
            flags: flags,
            positionXMillimetres: Int32(clamping: Int64(((trueX + odometryErrorX) * 1000).rounded())),
            positionYMillimetres: Int32(clamping: Int64(((trueY + odometryErrorY) * 1000).rounded())),
            headingCentidegrees: Int16(clamping: Int((headingDegrees * 100).rounded())),
            velocityMillimetresPerSecond: Int16(clamping: Int((linear.velocity * 1000).rounded())),
            odometerMillimetres: UInt32(truncatingIfNeeded: Int64(odometer * 1000)),
            faultCode: chassisDrive.faultCode)
    }

    // MARK: Lift

    private func applyLiftControlword() -> ModbusException? {
        guard let command = try? LiftCommand(registers: liftHolding) else { return .illegalDataValue }
        let wasEnabled = liftDrive.isEnabled
        let start = liftDrive.apply(command.controlword, powerAvailable: motionPowerOn)
        if !liftDrive.isEnabled && wasEnabled {
            lift.target = nil
            homing = false
        }
        if command.controlword.contains(.halt) {
            lift.target = nil
            homing = false
        }
        if command.controlword.contains(.newSetpoint) && !start && liftDrive.state != .operationEnabled {
            return .serverDeviceFailure
        }
        guard start else { return nil }
        switch command.mode {
        case .idle:
            return nil
        case .homing:
            homing = true
            homed = false
            lift.maxSpeed = settings.liftHomingSpeedMetresPerSecond
            lift.target = settings.liftMinimumMetres
        case .profilePosition:
            guard homed else { return .serverDeviceFailure }
            lift.maxSpeed = min(settings.liftMaxSpeedMetresPerSecond, Double(command.speedMillimetresPerSecond) / 1000)
            lift.acceleration = min(settings.liftAccelerationMetresPerSecond2, Double(command.accelerationMillimetresPerSecond2) / 1000)
            lift.target = Double(command.targetHeightMillimetres) / 1000
        }
        liftSetpointAck = true
        liftTargetReached = false
        return nil
    }

    private func stepLift(_ dt: Double) {
        guard lift.isMoving else { return }
        if liftStuck {
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
        let atLower = lift.position <= settings.liftMinimumMetres + 0.0005
        if lift.target == nil {
            liftTargetReached = true
            if homing && atLower {
                homing = false
                homed = true
            }
        }
    }

    private func liftStatus() -> LiftStatus {
        var flags: LiftStatus.Flags = []
        if homed { flags.insert(.homed) }
        if lift.position <= settings.liftMinimumMetres + 0.0005 { flags.insert(.lowerLimit) }
        if lift.position >= settings.liftMaximumMetres - 0.0005 { flags.insert(.upperLimit) }
        if liftTargetReached { flags.insert(.targetReached) }
        if lift.velocity != 0 { flags.insert(.moving) }
        if liftSetpointAck { flags.insert(.setpointAcknowledged) }
        // Until homed the encoder has no zero, so the firmware reports 0.
        let height = homed ? UInt16(clamping: Int((lift.position * 1000).rounded())) : 0
        return LiftStatus(
            statusword: liftDrive.statusword(targetReached: liftTargetReached, setpointAcknowledged: liftSetpointAck),
            flags: flags, heightMillimetres: height,
            velocityMillimetresPerSecond: Int16(clamping: Int((lift.velocity * 1000).rounded())),
            faultCode: liftDrive.faultCode)
    }

    // MARK: Detector

    private func applyDetectorCommand() {
        guard let command = try? DetectorCommand(registers: detectorHolding) else { return }
        if command.control.contains(.clearOverload) && !previousDetectorControl.contains(.clearOverload) && !overloadForced {
            overloadLatched = trueDoseRate() > settings.detector.rangeMaxMicrosievertsPerHour
        }
        previousDetectorControl = command.control
    }

    private func trueDoseRate() -> Double {
        // The containers' effect on the background is geometry only: keep it while the
        // probe stays within 5 mm.
        let p = probe
        let key = (Int((p.x / 0.005).rounded()), Int((p.y / 0.005).rounded()), Int((p.z / 0.005).rounded()))
        if cachedEffectKey.map({ $0 != key }) ?? true {
            cachedEffect = field.containerEffect(x: p.x, y: p.y, z: p.z)
            cachedEffectKey = key
        }
        return field.doseRate(x: p.x, y: p.y, z: p.z, atSeconds: simulatedSeconds, response: settings.detector.response,
                              effect: .some(cachedEffect)) + checkSourceMicrosievertsPerHour
    }

    private func stepDetector(_ dt: Double) {
        let d = settings.detector
        let hvOn = DetectorCommand.Control(rawValue: detectorHolding[0]).contains(.highVoltageOn)
        let dose = overloadForced ? d.rangeMaxMicrosievertsPerHour * 2 : trueDoseRate()
        if dose > d.rangeMaxMicrosievertsPerHour { overloadLatched = true }
        guard hvOn, !detectorDead else {
            silentSeconds += dt
            return
        }
        // The uncalibrated detector reads dose / factor, so that raw × factor is the true dose.
        let trueRate = d.sensitivityCountsPerSecondPerMicrosievertPerHour * dose / d.calibrationFactor * (1 + d.responseDriftFraction)
        let measuredRate = d.deadTimeParalysable ? trueRate * exp(-trueRate * d.deadTimeMicroseconds * 1e-6)
            : trueRate / (1 + trueRate * d.deadTimeMicroseconds * 1e-6)
        let pulses = random.poisson(measuredRate * dt)
        counts &+= UInt32(truncatingIfNeeded: pulses)
        silentSeconds = pulses == 0 ? silentSeconds + dt : 0
        let instantaneous = Double(pulses) / dt / d.sensitivityCountsPerSecondPerMicrosievertPerHour * d.calibrationFactor
        let alpha = min(1, dt / d.timeConstantSeconds)
        filteredMicrosievertsPerHour += (instantaneous - filteredMicrosievertsPerHour) * alpha
    }

    private func detectorStatus() -> DetectorStatus {
        let d = settings.detector
        let hvOn = DetectorCommand.Control(rawValue: detectorHolding[0]).contains(.highVoltageOn)
        let noCounts = silentSeconds > 10
        var flags: DetectorStatus.Flags = []
        if hvOn && !detectorDead { flags.insert([.dataValid, .highVoltageOk]) }
        if overloadLatched { flags.insert(.overload) }
        if noCounts { flags.insert(.fault) }
        let shown = min(filteredMicrosievertsPerHour, d.rangeMaxMicrosievertsPerHour)
        return DetectorStatus(
            flags: flags, doseRateNanosievertsPerHour: UInt32(clamping: Int64((shown * 1000).rounded())),
            counts: counts, timeBaseMilliseconds: UInt32(truncatingIfNeeded: UInt64(max(0, (simulatedSeconds - bootSeconds) * 1000))),
            faultCode: noCounts ? 16 : 0)
    }

    private func detectorInfo() -> DetectorInfo {
        let d = settings.detector
        return DetectorInfo(
            serialNumber: String(d.serialNumber.prefix(16)),
            calibrationFactorMillionths: UInt32(clamping: Int64((d.calibrationFactor * 1_000_000).rounded())),
            calibrationDate: d.calibrationDate, calibrationExpiry: d.calibrationExpiry,
            sensitivityDeciCountsPerSecondPerMicrosievertPerHour: UInt16(clamping: Int((d.sensitivityCountsPerSecondPerMicrosievertPerHour * 10).rounded())),
            timeConstantMilliseconds: UInt16(clamping: Int((d.timeConstantSeconds * 1000).rounded())),
            rangeMaxNanosievertsPerHour: UInt32(clamping: Int64((d.rangeMaxMicrosievertsPerHour * 1000).rounded())))
    }

    // MARK: Physics

    /// Advances the world by one fixed step.
    public func step() {
        lock.lock()
        defer { lock.unlock() }
        let dt = Self.stepSeconds
        simulatedSeconds += dt
        if watchdogRunning && !watchdogExpired
            && simulatedSeconds - lastRefreshSeconds > Double(safetyHolding[1]) / 1000 {
            watchdogExpired = true
            latchEstop()
        }
        if estopButton && !estopLatched { latchEstop() }
        if !motionPowerOn {
            chassisDrive.powerLost()
            liftDrive.powerLost()
            stopChassis()
            lift.halt()
        }
        let before = (x: trueX, y: trueY, heading: trueHeading, lift: lift.position)
        if chassisDrive.isEnabled { stepChassis(dt) }
        if liftDrive.isEnabled { stepLift(dt) }
        battery.draw(seconds: dt, metresDriven: hypot(trueX - before.x, trueY - before.y),
                     degreesTurned: abs(trueHeading - before.heading) * 180 / .pi, liftRiseMetres: max(0, lift.position - before.lift))
        stepDetector(dt)
        if !bumperForced && !touchesContainer() { bumperFront = false }
    }

    /// Advances the world by `seconds` in fixed steps (used by tests in virtual time).
    public func advance(seconds: Double) {
        let steps = Int((seconds / Self.stepSeconds).rounded())
        for _ in 0..<steps { step() }
    }
}
