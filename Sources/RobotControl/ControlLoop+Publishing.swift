import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// Publishing: the snapshot the command side reads, and device lifecycles.
extension ControlLoop {
    // MARK: Publishing

    func publish(_ inputs: Inputs) {
        var s = RobotSnapshot()
        s.tick = tick
        if let c = inputs.chassis {
            s.xMetres = c.positionXMetres
            s.yMetres = c.positionYMetres
            s.headingDegrees = c.headingDegrees
            s.speedMetresPerSecond = Double(c.velocityMillimetresPerSecond) / 1000
            s.chassisState = c.driveState
            s.chassisMoving = c.flags.contains(.moving)
        }
        if let l = inputs.lift {
            s.liftHeightMetres = l.heightMetres
            s.liftState = l.driveState
            s.liftHomed = l.flags.contains(.homed)
            s.liftMoving = l.flags.contains(.moving)
        }
        if let d = inputs.detector, let block = inputs.detectorBlock {
            s.instrumentDoseRateMicrosievertsPerHour = d.doseRateMicrosievertsPerHour
            s.detectorOverload = d.flags.contains(.overload)
            rateWindow.add(d, sequence: block.sequence)
            if let (counts, ms) = rateWindow.span(atLeastMilliseconds: 1000), ms > 0, let info = detectorInfo {
                let seconds = Double(ms) / 1000
                let m = Double(counts) / seconds
                let correction = max(1e-9, 1 - m * configuration.detectorDeadTimeSeconds)
                s.countRatePerSecond = m / correction
                s.countRateUncertaintyPerSecond = Double(counts).squareRoot() / seconds / (correction * correction)
                let scale = info.calibrationFactor / info.sensitivityCountsPerSecondPerMicrosievertPerHour
                s.doseRateMicrosievertsPerHour = s.countRatePerSecond * scale
                s.doseRateUncertaintyMicrosievertsPerHour = s.countRateUncertaintyPerSecond * scale
            }
        }
        if let safety = inputs.safety {
            s.motionPowerOn = safety.flags.contains(.motionPowerOn)
            s.estopButton = safety.flags.contains(.estopButton)
            s.batteryChargePercent = Double(safety.batteryChargePercent)
            s.batteryVolts = safety.batteryVolts
        }
        if protocolFeatures.batteryMonitor, let block = bus.latest(unit: RegisterMap.safety.unitId, block: SafetyBattery.spec),
           block.consecutiveFailures == 0, let battery = try? SafetyBattery(registers: block.registers), let volts = s.batteryVolts {
            s.batteryCurrentAmperes = battery.currentAmperes
            s.batteryWatts = battery.currentAmperes * volts
            let standing = !(inputs.chassis?.flags.contains(.moving) ?? true) && !(inputs.lift?.flags.contains(.moving) ?? true)
            standingDraw.add(watts: battery.currentAmperes * volts, sequence: block.sequence, standing: standing && !battery.flags.contains(.charging))
            s.standingWatts = standingDraw.watts
        }
        s.detectorAvailable = (inputs.detectorBlock?.consecutiveFailures ?? 1) == 0
        s.linkUp = ((inputs.safetyBlock?.consecutiveFailures ?? 1) == 0, (inputs.chassisBlock?.consecutiveFailures ?? 1) == 0,
                    (inputs.liftBlock?.consecutiveFailures ?? 1) == 0, s.detectorAvailable)
        s.lifecycle = (
            lifecycle(inputs.safetyBlock, operating: inputs.safety?.flags.contains(.motionPowerOn) == true, fault: false),
            lifecycle(inputs.chassisBlock, operating: inputs.chassis?.driveState == .operationEnabled,
                      fault: inputs.chassis?.driveState == .fault),
            lifecycle(inputs.liftBlock, operating: inputs.lift?.driveState == .operationEnabled,
                      fault: inputs.lift?.driveState == .fault),
            lifecycle(inputs.detectorBlock, operating: inputs.detector?.flags.contains(.dataValid) == true,
                      fault: inputs.detector?.flags.contains(.fault) == true))
        s.stopCause = stopCause
        s.estopRequestsServed = estopRequestsServed
        s.estopServedAtTick = estopServedAtTick
        s.haltRequestsServed = haltRequestsServed
        s.haltServedAtTick = haltServedAtTick
        shared.lock()
        countTrace.record(chassis: inputs.chassis, chassisSequence: inputs.chassisBlock?.sequence ?? 0,
                          chassisAt: inputs.chassisBlock?.sampledAtNanoseconds ?? 0, lift: inputs.lift,
                          liftSequence: inputs.liftBlock?.sequence ?? 0, liftAt: inputs.liftBlock?.sampledAtNanoseconds ?? 0,
                          detector: inputs.detector, detectorSequence: inputs.detectorBlock?.sequence ?? 0,
                          detectorAt: inputs.detectorBlock?.sampledAtNanoseconds ?? 0)
        if protocolFeatures.rangePair, let block = bus.latest(unit: RegisterMap.chassis.unitId, block: ChassisRange.spec),
           block.consecutiveFailures == 0 {
            rangeTrace.record(try? ChassisRange(registers: block.registers), blockSequence: block.sequence, at: block.sampledAtNanoseconds)
        }
        s.deadmanArmed = deadmanArmed
        s.fieldScanner = fieldWatch.scanner
        s.heldByProtectiveField = chassis.phase == .held
        s.protectiveStops = fieldWatch.protectiveStops
        s.fieldSlowdowns = fieldWatch.slowdowns
        s.overruns = overruns
        snapshotValue = s
        shared.unlock()
    }
}

extension ControlLoop {
    func lifecycle(_ block: PolledBlock?, operating: Bool, fault: Bool) -> DeviceLifecycle {
        guard let block, block.sequence > 0 else { return .unconfigured }
        if block.consecutiveFailures >= configuration.lostLinkMissedPolls || fault { return .error }
        return operating ? .active : .inactive
    }
}

extension ControlLoop {
    /// The detector's count samples still held (about 13 minutes at a 50 ms poll), each with
    /// the chassis and lift position at the instant its counters were latched (`CountTrace`),
    /// after `sequence` (0 for all), oldest first. For a survey that measures while moving.
    public func countSamples(after sequence: UInt64 = 0) -> [CountSample] {
        shared.lock()
        defer { shared.unlock() }
        return countTrace.samples(after: sequence)
    }

    /// The range pair's readings still held (about 13 minutes at a 100 ms poll) after
    /// `sequence` (0 for all), oldest first; empty for a chassis without the pair.
    public func rangeSamples(after sequence: UInt64 = 0) -> [RangeSample] {
        shared.lock()
        defer { shared.unlock() }
        return rangeTrace.samples(after: sequence)
    }

    /// The newest range sample's sequence (0 before the first).
    public var rangeSequence: UInt64 {
        shared.lock()
        defer { shared.unlock() }
        return rangeTrace.sequence
    }
}
