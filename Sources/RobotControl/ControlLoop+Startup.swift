import FirmwareProtocol
import Foundation
import RobotIO

/// Start-up: identify every unit, read what protocol 1.1 adds, bring the units to the
/// state the loop expects (idle set-points, detector high voltage on, the pose given, the
/// power-up interlock released), then start the polls.
extension ControlLoop {
    /// How long start-up waits for units that answer "booting" (exception 6; F3.9 allows
    /// a unit 2 s).
    static let bootWaitNanoseconds: UInt64 = 3_000_000_000

    func prepare() async throws(StartError) {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw .invalidConfiguration(problems) }
        bus.start()
        do {
            for device in RegisterMap.devices {
                let identity = try await identifyAfterBoot(device)
                firmwareVersions[device.name] = "\(identity.firmwareVersionText) (protocol \(identity.protocolVersion))"
                guard let robotDevice = RobotDevice(rawValue: device.name) else { continue }
                protocolFeatures.versions[robotDevice] = identity.protocolVersion
                if identity.protocolVersion.hasBootBlock {
                    protocolFeatures.boot[robotDevice] = try await bus.read(BootBlock.self, unit: device.unitId, priority: .command)
                }
            }
            startupNotes = protocolFeatures.missing.map { "protocol 1.1 feature unavailable: \($0)" }
            detectorInfo = try await bus.read(DetectorInfo.self, unit: RegisterMap.detector.unitId, priority: .command)
            // Clear any old set-point the drives hold from a previous run (no jump on start).
            try await bus.write(ChassisCommand(controlword: [], mode: .idle), unit: RegisterMap.chassis.unitId, priority: .command)
            try await bus.write(LiftCommand(controlword: [], mode: .idle), unit: RegisterMap.lift.unitId, priority: .command)
            try await switchDetectorOn()
            try await givePose()
            try await releasePowerUpInterlock()
        } catch let error as BusError {
            throw .device(error)
        } catch let error as StartError {
            throw error
        } catch {
            // givePose throws only the two kinds above; keep whatever else says, not a guess.
            throw .device(BusError(.io(code: 0, message: "\(error)"), unitId: 0, device: "bus", operation: "start-up"))
        }
        bus.addPoll(unit: RegisterMap.safety.unitId, block: SafetyStatus.spec, periodMilliseconds: configuration.safetyPollMilliseconds)
        bus.addPoll(unit: RegisterMap.chassis.unitId, block: ChassisStatus.spec, periodMilliseconds: configuration.chassisPollMilliseconds)
        bus.addPoll(unit: RegisterMap.lift.unitId, block: LiftStatus.spec, periodMilliseconds: configuration.liftPollMilliseconds)
        bus.addPoll(unit: RegisterMap.detector.unitId, block: DetectorStatus.spec, periodMilliseconds: configuration.detectorPollMilliseconds)
        if protocolFeatures.batteryMonitor && configuration.batteryPollMilliseconds > 0 {
            bus.addPoll(unit: RegisterMap.safety.unitId, block: SafetyBattery.spec, periodMilliseconds: configuration.batteryPollMilliseconds)
        }
        if protocolFeatures.rangePair && configuration.rangePollMilliseconds > 0 {
            bus.addPoll(unit: RegisterMap.chassis.unitId, block: ChassisRange.spec, periodMilliseconds: configuration.rangePollMilliseconds)
        }
    }

    /// Identifies a unit, waiting while it answers "booting" (exception 6).
    func identifyAfterBoot(_ device: DeviceSpec) async throws(BusError) -> IdentityBlock {
        let deadline = MonotonicClock.nanoseconds() &+ Self.bootWaitNanoseconds
        while true {
            do {
                return try await bus.identify(device, required: .minimumSupported)
            } catch {
                guard case .exception(let code) = error.kind, code == ModbusException.serverDeviceBusy.rawValue,
                      MonotonicClock.nanoseconds() < deadline else { throw error }
                try? await Task.sleep(nanoseconds: 50_000_000)
            }
        }
    }

    /// R8.1: the detector's high voltage on. A 1.0 controller relied on the boot default;
    /// the alarm level is written back as the unit holds it.
    func switchDetectorOn() async throws(BusError) {
        var command = try await bus.read(DetectorCommand.self, unit: RegisterMap.detector.unitId, priority: .command)
        command.control.insert(.highVoltageOn)
        command.control.remove(.clearOverload)
        try await bus.write(command, unit: RegisterMap.detector.unitId, priority: .command)
    }

    /// Q9.2: a 1.1 chassis that does not know its pose gets `startPose`. One that does (it
    /// saw its dock, or an earlier run gave it) keeps it: a controller restarted mid-yard
    /// must not move the robot's idea of where it is back to the dock.
    func givePose() async throws {
        guard let pose = configuration.startPose else {
            guard protocolFeatures.chassisPose else { return }
            let status = try await bus.read(ChassisStatus.self, unit: RegisterMap.chassis.unitId, priority: .command)
            if !status.flags.contains(.poseSet) {
                startupNotes.append("the chassis has no pose and no startPose is configured: the frame it powered up in is taken as the yard frame")
            }
            return
        }
        guard protocolFeatures.chassisPose else {
            throw StartError.missingFeature(
                "startPose is set, but the chassis (protocol \(protocolFeatures.versions[.chassis].map { "\($0)" } ?? "?")) "
                + "has no pose block (protocol 1.1, §9): update the chassis firmware or remove startPose")
        }
        let status = try await bus.read(ChassisStatus.self, unit: RegisterMap.chassis.unitId, priority: .command)
        if status.flags.contains(.poseSet) {
            startupNotes.append(String(format: "the chassis knows its pose (%.3f, %.3f) m, %.1f°: startPose not written",
                                       status.positionXMetres, status.positionYMetres, status.headingDegrees))
            return
        }
        try await bus.write(ChassisPose(xMetres: pose.xMetres, yMetres: pose.yMetres, headingDegrees: pose.headingDegrees),
                            unit: RegisterMap.chassis.unitId, priority: .command)
        startupNotes.append(String(format: "pose given to the chassis: (%.3f, %.3f) m, %.1f°", pose.xMetres, pose.yMetres, pose.headingDegrees))
    }

    /// W7.5: a 1.1 safety unit keeps its chain open from power-up until a refresh and a
    /// reset edge. Starting the controller is the deliberate act that releases it; the
    /// robot still moves only when an officer commands it. A boot interlock seen later (a
    /// safety unit that restarted mid-run) is a stop cause that waits for an officer's reset.
    func releasePowerUpInterlock() async throws(BusError) {
        let status = try await bus.read(SafetyStatus.self, unit: RegisterMap.safety.unitId, priority: .safety)
        guard status.flags.contains(.bootInterlock) else { return }
        if status.flags.contains(.estopButton) {
            startupNotes.append("the e-stop button is pressed: the power-up interlock stays until it is released and the robot reset")
            return
        }
        let timeout = configuration.watchdogTimeoutMilliseconds
        for outputs: SafetyCommand.Outputs in [[], [.estopReset], []] {
            watchdogToken &+= 1
            if watchdogToken == 0 { watchdogToken = 1 }
            try await bus.write(SafetyCommand(watchdogToken: watchdogToken, watchdogTimeoutMilliseconds: timeout, outputs: outputs),
                                unit: RegisterMap.safety.unitId, priority: .safety)
        }
        lastRefreshNanoseconds = clock.nanoseconds()
        startupNotes.append("power-up interlock released (one refresh, one reset edge)")
    }
}
