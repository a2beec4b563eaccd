import FirmwareProtocol
import Foundation

/// The robot's firmware and physics: four Modbus units backed by a chassis, a lift,
/// a detector and a safety controller moving in a simulated yard.
///
/// Thread-safe: every entry point takes the model's lock, so the server thread and
/// the physics thread can share it.
public final class FirmwareModel: @unchecked Sendable {
    public static let stepSeconds = 0.005

    let lock = NSLock()
    public let settings: RobotSettings
    var field: RadiationField
    var random: SeededRandom
    /// The range pair's noise, apart from `random` so that polling it does not change the
    /// detector's counts for a seed.
    var rangeRandom: SeededRandom
    public internal(set) var simulatedSeconds = 0.0

    // Safety controller.
    var estopButton = false
    var estopLatched = false
    var softwareEstop = false
    var watchdogRunning = false
    var watchdogExpired = false
    var lastWatchdogToken: UInt16 = 0
    var lastRefreshSeconds = 0.0
    var previousOutputs: SafetyCommand.Outputs = []
    var safetyHolding: [UInt16] = FirmwareModel.safetyBootDefaults

    /// CLOCK_MONOTONIC time the last software e-stop write arrived, for latency benchmarks.
    public internal(set) var lastSoftwareEstopArrivalNanoseconds: UInt64 = 0

    // Chassis.
    var chassisDrive = DriveStateMachine()
    var chassisHolding: [UInt16]
    var trueX: Double
    var trueY: Double
    var trueHeading: Double
    var odometryErrorX = 0.0
    var odometryErrorY = 0.0
    var odometer = 0.0
    var linear: AxisProfile
    var angular: AxisProfile
    var chassisSegments: [ChassisSegment] = []
    var chassisTargetReached = true
    var chassisSetpointAck = false
    var bumperFront = false
    var bumperForced = false

    // Lift.
    var liftDrive = DriveStateMachine()
    var liftHolding: [UInt16]
    var lift: AxisProfile
    var homed = false
    var homing = false
    var liftStuck = false
    var liftStuckSeconds = 0.0
    var liftTargetReached = true
    var liftSetpointAck = false

    // Detector.
    /// Boot defaults: high voltage on, alarm threshold 250 nSv/h (set in `init`).
    var detectorHolding: [UInt16]
    var counts: UInt32 = 0
    var filteredMicrosievertsPerHour: Double
    var overloadLatched = false
    var cachedEffectKey: (Int, Int, Int)?
    /// A check source in its holder on the probe (0 when none).
    var checkSourceMicrosievertsPerHour = 0.0
    var battery: BatteryModel
    var cachedEffect: (ground: Double, sky: Double, norm: Double)?
    var overloadForced = false
    var detectorDead = false
    var silentSeconds = 0.0
    var previousDetectorControl: DetectorCommand.Control = [.highVoltageOn]

    enum ChassisSegment: Equatable {
        /// Turn on the spot to this true heading, the short way round.
        case turn(toRadians: Double)
        /// Turn on the spot by exactly this angle, in its sign's direction (mode 3, D5.11).
        case turnBy(radians: Double)
        case drive(metres: Double)
    }

    // Protocol 1.1: boot, pose and limit switches.
    /// Per unit ID (index 1-4): power-ups so far, when the last one was (uptime, time
    /// base), and until when requests are answered with exception 6 (F3.9).
    var bootCount: [UInt16] = [0, 1, 1, 1, 1]
    var resetCause: ResetCause = .powerOn
    var bootSeconds: [Double] = [0, 0, 0, 0, 0]
    var bootingUntilSeconds: [Double] = [0, 0, 0, 0, 0]
    var bootInterlock = true
    /// The reported pose is the odometry turned by `frameRadians` and moved by
    /// (`frameX`, `frameY`): a pose write (Q9.2) or a restart (Q9.1) sets the frame.
    var frameRadians = 0.0
    var frameX = 0.0
    var frameY = 0.0
    var poseSet = true
    var chassisPose: [UInt16] = [0, 0, 0, 0, 0]
    /// The chassis is decelerating to a stop (halt, quick stop, a stop set-point).
    var chassisStopping = false
    var liftStopping = false
    /// Homing's second leg: from the lower switch back up to the bottom of travel.
    var homingBackOff = false
    var lowerSwitchForced = false
    var upperSwitchForced = false
    var lowerSwitchWasClosed = false
    var upperSwitchWasClosed = false

    // Protocol 1.1: the protective-field scanner (H9) and the people it watches for.
    public internal(set) var people: [WalkingPerson] = []
    /// A rig's test piece (`obstacleAhead`): a person standing still, last in `people`.
    var obstacleIndex: Int?
    var scannerFaultForced = false
    var fieldWarningNow = false
    var fieldProtectiveNow = false
    /// H9.3: the last set-point was ended by a protective stop.
    var protectiveStopLatched = false
    /// When the stop H9.2 asks for begins: the response time after the first detection.
    var protectiveStopDueSeconds: Double?
    var protectiveStopFrom = (x: 0.0, y: 0.0)
    /// The simulator's truth for campaigns: every protective stop and every contact.
    public internal(set) var protectiveStops: [ProtectiveStopRecord] = []
    public internal(set) var contacts: [PersonContact] = []
    var personInContact: Set<Int> = []

    func deviant(_ deviation: Deviation) -> Bool { settings.deviations.contains(deviation) }

    public init(settings: RobotSettings = RobotSettings(), field: RadiationField = RadiationField(),
                seed: UInt64 = 1, startX: Double = 0, startY: Double = 0, startHeadingDegrees: Double = 0,
                startLiftMetres: Double = 1.0) {
        self.settings = settings
        self.field = field
        self.random = SeededRandom(seed: seed)
        rangeRandom = SeededRandom(seed: seed ^ 0x7A46_E5E4)
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
        detectorHolding = Self.detectorBootDefaults
        chassisDrive.legacyQuickStop = settings.deviations.contains(.quickStopIgnored)
        liftDrive.legacyQuickStop = chassisDrive.legacyQuickStop
        // W7.5: the chain is open at power-up until a refresh and a reset edge.
        bootInterlock = !settings.deviations.contains(.noBootInterlock) && settings.protocolMinor >= 1
        estopLatched = bootInterlock
        poseSet = settings.poseKnownAtPowerUp
    }

    /// Boot defaults of the holding registers (the map's `bootDefault`, B4.1): high
    /// voltage on, alarm level 250 nSv/h.
    static let detectorBootDefaults: [UInt16] = [DetectorCommand.Control.highVoltageOn.rawValue, 0, 250]
    static let safetyBootDefaults: [UInt16] = [0, 500, 0]

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
    var probe: (x: Double, y: Double, z: Double) {
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
            powerUp()
        case .restart(let device):
            if let spec = RegisterMap.device(named: device) { restart(unit: spec.unitId) }
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
        case .fieldScannerFault(let on):
            scannerFaultForced = on
        case .obstacleAhead(let metres):
            placeObstacle(metresAhead: metres)
        case let .limitSwitch(upper, closed):
            if upper { upperSwitchForced = closed } else { lowerSwitchForced = closed }
            checkLimitSwitches()
        }
    }

    /// A power cycle of all four units (B4.1-B4.3).
    func powerUp() {
        for device in RegisterMap.devices { restart(unit: device.unitId) }
    }

    /// One unit starts again (B4.1-B4.3): its holding registers back to their boot
    /// defaults, its state lost, and a booting phase that answers exception 6.
    func restart(unit: UInt8) {
        switch unit {
        case RegisterMap.safety.unitId:
            // The chain opens with the boot interlock, so both drives lose motion power.
            watchdogRunning = false
            watchdogExpired = false
            lastWatchdogToken = 0
            safetyHolding = Self.safetyBootDefaults
            previousOutputs = []
            bootInterlock = !deviant(.noBootInterlock) && settings.protocolMinor >= 1
            estopLatched = bootInterlock || estopButton
            softwareEstop = false
            stopAllMotion()
        case RegisterMap.chassis.unitId:
            chassisDrive.reboot()
            chassisHolding = (try? ChassisCommand(controlword: [], mode: .idle).registers()) ?? chassisHolding
            stopChassis()
            odometer = 0
            chassisSetpointAck = false
            chassisTargetReached = true
            protectiveStopLatched = false
            protectiveStopDueSeconds = nil
            if !deviant(.poseSurvivesReboot) {
                // Away from the dock the chassis comes up at (0, 0, 0) in a frame of its own.
                setPose(x: 0, y: 0, headingRadians: 0)
                poseSet = false
                chassisPose = [0, 0, 0, 0, 0]
            }
        case RegisterMap.lift.unitId:
            liftDrive.reboot()
            liftHolding = (try? LiftCommand(controlword: [], mode: .idle).registers()) ?? liftHolding
            lift.halt()
            homed = false
            homing = false
            homingBackOff = false
            liftSetpointAck = false
            liftTargetReached = true
        case RegisterMap.detector.unitId:
            detectorHolding = Self.detectorBootDefaults
            previousDetectorControl = [.highVoltageOn]
            counts = 0
            overloadLatched = overloadForced
            silentSeconds = 0
        default:
            return
        }
        let i = Int(unit)
        bootSeconds[i] = simulatedSeconds
        bootCount[i] &+= 1
        resetCause = .powerOn
        if !deviant(.noBootingPhase) { bootingUntilSeconds[i] = simulatedSeconds + Self.bootingSeconds }
    }

    /// How long a unit takes to boot, answering exception 6 meanwhile (F3.9: at most 2 s).
    static let bootingSeconds = 0.3

    // MARK: Modbus access

    /// The registers for a read, or the exception the firmware answers with.
    public func read(unit: UInt8, table: RegisterTable, start: Int, count: Int) -> Result<[UInt16], ModbusException> {
        guard let device = RegisterMap.device(unitId: unit) else { return .failure(.illegalDataAddress) }
        if booting(unit) { return .failure(.serverDeviceBusy) }
        if let problem = device.check(table: table, start: start, count: count, values: nil), !tolerated(problem) {
            return .failure(Self.exception(for: problem))
        }
        guard let block = device.block(containing: start, count: count, in: table), !absentIn10(block) else {
            return .failure(.illegalDataAddress)
        }
        lock.lock()
        defer { lock.unlock() }
        let image = blockImage(device: device, block: block)
        let from = start - Int(block.start)
        return .success(Array(image[from..<(from + count)]))
    }

    /// Applies a write, or returns the exception the firmware answers with. Every check
    /// comes first; a write answered with an exception changes nothing (F3.6, F3.7).
    public func write(unit: UInt8, start: Int, values: [UInt16]) -> ModbusException? {
        guard let device = RegisterMap.device(unitId: unit) else { return .illegalDataAddress }
        if booting(unit) { return .serverDeviceBusy }
        if let problem = device.check(table: .holding, start: start, count: values.count, values: values), !tolerated(problem) {
            return Self.exception(for: problem)
        }
        if let block = device.block(containing: start, count: values.count, in: .holding), absentIn10(block) { return .illegalDataAddress }
        lock.lock()
        defer { lock.unlock() }
        let offset = start - Int(RegisterMap.statusStart)
        switch device.unitId {
        case RegisterMap.safety.unitId:
            for (i, v) in values.enumerated() { safetyHolding[offset + i] = v }
            return applySafetyCommand()
        case RegisterMap.chassis.unitId:
            if start >= Int(ChassisPose.spec.start) { return writePose(start: start, values: values) }
            return writeChassis(offset: offset, values: values)
        case RegisterMap.lift.unitId:
            return writeLift(offset: offset, values: values)
        case RegisterMap.detector.unitId:
            for (i, v) in values.enumerated() { detectorHolding[offset + i] = v }
            applyDetectorCommand()
            return nil
        default:
            return .illegalDataAddress
        }
    }

    /// A block protocol 1.1 added, on a unit set to speak 1.0; or the optional range block
    /// (G9) on a chassis without the sensors.
    func absentIn10(_ block: BlockSpec) -> Bool {
        if block.name == "range" && settings.rangePair == nil { return true }
        if block.name == "battery" && !settings.battery.currentMonitored { return true }
        return settings.protocolMinor == 0 && (block.name == "boot" || block.name == "pose" || block.name == "range" || block.name == "battery")
    }

    /// True while the unit boots after a power-up (F3.9).
    func booting(_ unit: UInt8) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return Int(unit) < bootingUntilSeconds.count && simulatedSeconds < bootingUntilSeconds[Int(unit)]
    }

    /// A request problem a deviation brings back as accepted (undefined bits, an
    /// undefined lift mode, half a 32-bit field).
    func tolerated(_ problem: DeviceSpec.RequestProblem) -> Bool {
        switch problem {
        case .splitsField: return deviant(.splitFieldAccepted)
        case .valueOutOfRange(.invalidValue(_, _, let field, _)):
            if field == "mode" { return deviant(.invalidModeStored) }
            return deviant(.undefinedBitsAccepted)
        default: return false
        }
    }

    static func exception(for problem: DeviceSpec.RequestProblem) -> ModbusException {
        switch problem {
        case .unknownRegister, .splitsField: return .illegalDataAddress
        case .badCount, .valueOutOfRange: return .illegalDataValue
        }
    }

    func blockImage(device: DeviceSpec, block: BlockSpec) -> [UInt16] {
        if block.table == .holding {
            switch device.unitId {
            case RegisterMap.safety.unitId: return safetyHolding
            case RegisterMap.chassis.unitId: return block.name == "pose" ? chassisPose : chassisHolding
            case RegisterMap.lift.unitId: return liftHolding
            default: return detectorHolding
            }
        }
        let encoded: [UInt16]?
        switch (device.unitId, block.name) {
        case (_, "identity"):
            encoded = try? IdentityBlock(protocolVersion: ProtocolVersion(major: ProtocolVersion.current.major, minor: settings.protocolMinor),
                                         deviceType: device.deviceType,
                                         firmwareVersion: settings.firmwareVersion).registers()
        case (_, "boot"):
            var features: BootBlock.Features = []
            if device.unitId == RegisterMap.chassis.unitId {
                features.insert(.poseSet)
                if settings.rangePair != nil { features.insert(.rangePair) }
                if settings.fieldScanner != nil && settings.protocolMinor >= 1 { features.insert(.fieldScanner) }
            }
            if device.unitId == RegisterMap.safety.unitId && settings.battery.currentMonitored { features.insert(.batteryMonitor) }
            encoded = try? BootBlock(bootCount: bootCount[Int(device.unitId)], resetCause: resetCause, features: features).registers()
        case (RegisterMap.safety.unitId, "battery"): encoded = try? SafetyBattery(currentDeciamperes: battery.currentDeciamperes).registers()
        case (RegisterMap.safety.unitId, _): encoded = try? safetyStatus().registers()
        case (RegisterMap.chassis.unitId, "range"): encoded = try? chassisRange()?.registers()
        case (RegisterMap.chassis.unitId, _): encoded = try? chassisStatus().registers()
        case (RegisterMap.lift.unitId, _): encoded = try? liftStatus().registers()
        case (RegisterMap.detector.unitId, "info"): encoded = try? detectorInfo().registers()
        default: encoded = try? detectorStatus().registers()
        }
        return encoded ?? [UInt16](repeating: 0, count: block.count)
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
        if !motionPowerOn { stopAllMotion() }
        let before = (x: trueX, y: trueY, heading: trueHeading, lift: lift.position)
        // A drive that left operation enabled still decelerates to standstill (D5.2).
        if chassisDrive.isEnabled || linear.velocity != 0 || angular.velocity != 0 { stepChassis(dt) }
        if liftDrive.isEnabled || (lift.velocity != 0 && !deviant(.disableCoasts)) { stepLift(dt) }
        if linear.velocity == 0 && angular.velocity == 0 { chassisDrive.quickStopFinished() }
        if lift.velocity == 0 { liftDrive.quickStopFinished() }
        battery.draw(seconds: dt, metresDriven: hypot(trueX - before.x, trueY - before.y),
                     degreesTurned: abs(trueHeading - before.heading) * 180 / .pi, liftRiseMetres: max(0, lift.position - before.lift))
        stepDetector(dt)
        if !bumperForced && !touchesContainer() { bumperFront = false }
        stepFieldScanner()
    }

    /// Advances the world by `seconds` in fixed steps (used by tests in virtual time).
    public func advance(seconds: Double) {
        let steps = Int((seconds / Self.stepSeconds).rounded())
        for _ in 0..<steps { step() }
    }
}
