import FirmwareProtocol
import Foundation

/// The safety controller as `firmware-protocol/README.md` §7 specifies it: the watchdog,
/// the e-stop chain and its reset, the power-up interlock.
extension FirmwareModel {
    // MARK: Safety controller

    var motionPowerOn: Bool { !estopLatched && watchdogRunning && !watchdogExpired && !battery.empty }

    func latchEstop() {
        estopLatched = true
        stopAllMotion()
    }

    /// Motion power is off (D5.10): a category 0 stop, brakes on, both axes at standstill
    /// with no set-point, so target reached.
    func stopAllMotion() {
        chassisDrive.powerLost()
        liftDrive.powerLost()
        stopChassis()
        lift.halt()
        homing = false
        homingBackOff = false
        liftStopping = false
        chassisTargetReached = true
        liftTargetReached = true
    }

    func applySafetyCommand() -> ModbusException? {
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
        guard resetEdge, !estopButton, !softwareEstop else { return nil }
        let refreshedInTime = watchdogRunning
            && simulatedSeconds - lastRefreshSeconds < Double(command.watchdogTimeoutMilliseconds) / 1000
        if deviant(.resetWhileExpired) {
            // Before 1.1: the latch cleared even while the watchdog stayed expired.
            estopLatched = false
            bootInterlock = false
            if refreshedInTime { watchdogExpired = false }
        } else if refreshedInTime {
            // W7.4: only with no cause left does the edge close the chain, all flags together.
            estopLatched = false
            watchdogExpired = false
            bootInterlock = false
        }
        return nil
    }

    func safetyStatus() -> SafetyStatus {
        var flags: SafetyStatus.Flags = []
        if estopButton { flags.insert(.estopButton) }
        if estopLatched { flags.insert(.estopLatched) }
        if watchdogExpired { flags.insert(.watchdogExpired) }
        if motionPowerOn { flags.insert(.motionPowerOn) }
        if softwareEstop { flags.insert(.softwareEstop) }
        if bootInterlock && settings.protocolMinor >= 1 { flags.insert(.bootInterlock) }
        let outputs = SafetyCommand.Outputs(rawValue: safetyHolding[2])
        if outputs.contains(.beacon) { flags.insert(.beaconOn) }
        if outputs.contains(.buzzer) { flags.insert(.buzzerOn) }
        let timeout = Double(safetyHolding[1]) / 1000
        let remaining = watchdogRunning ? max(0, timeout - (simulatedSeconds - lastRefreshSeconds)) : 0
        let uptime = UInt32(truncatingIfNeeded: UInt64(max(0, (simulatedSeconds - bootSeconds[Int(RegisterMap.safety.unitId)]) * 1000)))
        return SafetyStatus(flags: flags, watchdogRemainingMilliseconds: UInt16(min(65535, remaining * 1000)),
                            batteryCentivolts: battery.centivolts, batteryChargePercent: battery.reportedPercent,
                            uptimeMilliseconds: uptime)
    }
}
