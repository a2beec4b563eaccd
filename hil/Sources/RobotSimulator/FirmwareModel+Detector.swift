import FirmwareProtocol
import Foundation

/// The detector as `firmware-protocol/README.md` §8 specifies it, counting Poisson pulses
/// from the radiation field at the probe.
extension FirmwareModel {
    // MARK: Detector

    func applyDetectorCommand() {
        guard let command = try? DetectorCommand(registers: detectorHolding) else { return }
        if command.control.contains(.clearOverload) && !previousDetectorControl.contains(.clearOverload) && !overloadForced {
            overloadLatched = trueDoseRate() > settings.detector.rangeMaxMicrosievertsPerHour
        }
        previousDetectorControl = command.control
    }

    func trueDoseRate() -> Double {
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

    func stepDetector(_ dt: Double) {
        let d = settings.detector
        let hvOn = DetectorCommand.Control(rawValue: detectorHolding[0]).contains(.highVoltageOn)
        let dose = overloadForced ? d.rangeMaxMicrosievertsPerHour * 2 : trueDoseRate()
        if dose > d.rangeMaxMicrosievertsPerHour { overloadLatched = true }
        guard hvOn, !detectorDead else {
            // R8.5: "no counts" is a fault of a detector with its high voltage on.
            silentSeconds = hvOn || deviant(.fault16WhileHvOff) ? silentSeconds + dt : 0
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

    func detectorStatus() -> DetectorStatus {
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
            counts: counts, timeBaseMilliseconds: UInt32(truncatingIfNeeded: UInt64(max(0, (simulatedSeconds - bootSeconds[Int(RegisterMap.detector.unitId)]) * 1000))),
            faultCode: noCounts ? 16 : 0)
    }

    func detectorInfo() -> DetectorInfo {
        let d = settings.detector
        return DetectorInfo(
            serialNumber: String(d.serialNumber.prefix(16)),
            calibrationFactorMillionths: UInt32(clamping: Int64((d.calibrationFactor * 1_000_000).rounded())),
            calibrationDate: d.calibrationDate, calibrationExpiry: d.calibrationExpiry,
            sensitivityDeciCountsPerSecondPerMicrosievertPerHour: UInt16(clamping: Int((d.sensitivityCountsPerSecondPerMicrosievertPerHour * 10).rounded())),
            timeConstantMilliseconds: UInt16(clamping: Int((d.timeConstantSeconds * 1000).rounded())),
            rangeMaxNanosievertsPerHour: UInt32(clamping: Int64((d.rangeMaxMicrosievertsPerHour * 1000).rounded())))
    }
}
