import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// Measurement: a dwell over the detector's counters and time base, and the live rate.
extension ControlLoop {
    // MARK: Measurement

    func advanceMeasurement(_ inputs: Inputs) {
        guard measurement.active else { return }
        guard let block = inputs.detectorBlock, block.consecutiveFailures < configuration.lostLinkMissedPolls,
              let d = inputs.detector, let info = detectorInfo else {
            // A unit answering "booting" (exception 6, F3.9) has restarted.
            let booting = inputs.detectorBlock?.lastError?.kind == .exception(code: ModbusException.serverDeviceBusy.rawValue)
            mailbox.update(measurement.commandId, .failed, problem: booting ? .detectorRestarted : .deviceUnavailable(device: .detector))
            measurement.active = false
            return
        }
        guard block.sequence > measurement.lastSequence else { return }
        measurement.lastSequence = block.sequence
        if !d.flags.contains(.dataValid) || d.flags.contains(.fault) {
            mailbox.update(measurement.commandId, .failed, problem: .deviceUnavailable(device: .detector))
            measurement.active = false
            return
        }
        guard measurement.hasStart else {
            measurement.start(d)
            return
        }
        // A time base that goes back means the detector restarted during the dwell: the
        // difference would be garbage, so the reading is refused and taken again. Counts
        // alone may wrap (R8.2), and so may the time base after 49.7 days: only a step back
        // (wrap-safe, more than half the range) is a restart.
        if d.timeBaseMilliseconds &- measurement.latest.timeBaseMilliseconds > UInt32.max / 2 {
            mailbox.update(measurement.commandId, .failed, problem: .detectorRestarted)
            measurement.active = false
            return
        }
        measurement.latest = d
        measurement.instrumentSum += d.doseRateMicrosievertsPerHour
        measurement.instrumentSamples += 1
        let (counts, ms) = d.countsSince(measurement.first)
        guard ms >= measurement.dwellMilliseconds else { return }
        let seconds = Double(ms) / 1000
        let m = Double(counts) / seconds
        let tau = configuration.detectorDeadTimeSeconds
        let correction = max(1e-9, 1 - m * tau)
        let n = m / correction
        let u = Double(counts).squareRoot() / seconds / (correction * correction)
        let sensitivity = info.sensitivityCountsPerSecondPerMicrosievertPerHour
        let factor = info.calibrationFactor
        let reading = Reading(
            counts: counts, seconds: seconds, countRatePerSecond: n, countRateUncertaintyPerSecond: u,
            doseRateMicrosievertsPerHour: n / sensitivity * factor, doseRateUncertaintyMicrosievertsPerHour: u / sensitivity * factor,
            instrumentDoseRateMicrosievertsPerHour: measurement.instrumentSum / Double(max(1, measurement.instrumentSamples)),
            overload: d.flags.contains(.overload))
        mailbox.update(measurement.commandId, .done, reading: reading)
        measurement.active = false
    }
}

/// A dwell in progress: the first detector sample after the start, and the running sums.
struct MeasurementProgress {
    var active = false
    var commandId: UInt64 = 0
    var dwellMilliseconds: UInt32 = 0
    var lastSequence: UInt64 = 0
    var hasStart = false
    var first = DetectorStatus(flags: [], doseRateNanosievertsPerHour: 0, counts: 0, timeBaseMilliseconds: 0, faultCode: 0)
    /// The newest sample of the dwell, to see the counters go backwards (a detector restart).
    var latest = DetectorStatus(flags: [], doseRateNanosievertsPerHour: 0, counts: 0, timeBaseMilliseconds: 0, faultCode: 0)
    var instrumentSum = 0.0
    var instrumentSamples = 0

    mutating func begin(commandId: UInt64, dwellMilliseconds: UInt32, afterSequence: UInt64) {
        self = MeasurementProgress()
        active = true
        self.commandId = commandId
        self.dwellMilliseconds = dwellMilliseconds
        lastSequence = afterSequence
    }

    mutating func start(_ sample: DetectorStatus) {
        first = sample
        latest = sample
        hasStart = true
    }
}

/// The last 64 detector samples, for a live count rate over about a second.
struct RateWindow {
    private var counts = [UInt32](repeating: 0, count: 64)
    private var times = [UInt32](repeating: 0, count: 64)
    private var next = 0
    private var filled = 0
    private var lastSequence: UInt64 = 0

    mutating func add(_ sample: DetectorStatus, sequence: UInt64) {
        guard sequence != lastSequence else { return }
        lastSequence = sequence
        // A reboot resets the time base: start the window again.
        if filled > 0 {
            let previous = (next + 63) % 64
            if sample.timeBaseMilliseconds < times[previous] { filled = 0 }
        }
        counts[next] = sample.counts
        times[next] = sample.timeBaseMilliseconds
        next = (next + 1) % 64
        filled = min(filled + 1, 64)
    }

    /// Counts and milliseconds from the newest sample back to the first one at least
    /// `ms` older (or the oldest kept).
    func span(atLeastMilliseconds ms: UInt32) -> (UInt32, UInt32)? {
        guard filled >= 2 else { return nil }
        let newest = (next + 63) % 64
        var index = newest
        for _ in 1..<filled {
            index = (index + 63) % 64
            if times[newest] &- times[index] >= ms { break }
        }
        return (counts[newest] &- counts[index], times[newest] &- times[index])
    }
}
