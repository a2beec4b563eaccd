import Foundation
import Inspection
import RobotControl

/// One scan run against the store: creates (or reopens) the scan record, runs the
/// executor on it, and finishes the record with its verdict, refusal or abort. Used by
/// `robotd --scan`, `robotctl scan` and the command server alike.
public final class ScanSession: Sendable {
    public let scanId: String
    public let plan: ScanPlan
    public let instrument: InstrumentRecord
    public let executor: ScanExecutor
    public let store: ScanStore
    public let officer: String

    /// How a run ended.
    public enum Ending: Sendable, CustomStringConvertible {
        case done(Verdict)
        case refused(String)
        case aborted
        case failed(String)

        public var description: String {
            switch self {
            case .done(let verdict): return "done: \(verdict.outcome.rawValue)"
            case .refused(let message): return "refused: \(message)"
            case .aborted: return "aborted by the officer"
            case .failed(let message): return "stopped, can be resumed: \(message)"
            }
        }
    }

    init(scanId: String, plan: ScanPlan, instrument: InstrumentRecord, store: ScanStore, loop: ControlLoop, officer: String, timeScale: Double) {
        self.scanId = scanId
        self.plan = plan
        self.instrument = instrument
        self.store = store
        self.officer = officer
        executor = ScanExecutor(loop: loop, plan: plan, instrument: instrument, record: store.record(for: scanId),
                                sleeper: Sleeper(timeScale: timeScale))
    }

    /// A new scan record for `plan`, with the detector's identity and calibration and the
    /// firmware versions as the loop reads them now.
    public static func create(store: ScanStore, loop: ControlLoop, plan: ScanPlan, robotId: String, officer: String,
                              timeScale: Double = 1, id: String? = nil) throws -> ScanSession {
        guard let info = loop.detectorInfo else {
            throw ScanStore.Failure(description: "the detector has not reported its identity and calibration yet; wait for it to come up")
        }
        // A detector whose last check-source test failed has drifted: no scan until it passes.
        let latest = (try? store.instrumentChecks(serialNumber: info.serialNumber, limit: 1))?.first
        if let latest, !latest.passed {
            throw ScanStore.Failure(description: "refused: " + latest.description + "; look at the probe, recalibrate it if needed, "
                                    + "and run a check-source test that passes (robotctl check-source) before scanning")
        }
        let recent = latest.flatMap { check in
            ScanStore.isoFormatter.date(from: check.takenAt).map { Date().timeIntervalSince($0) <= 86_400 } == true ? check.summary : nil
        }
        let instrument = InstrumentRecord(serialNumber: info.serialNumber,
                                          sensitivityCountsPerSecondPerMicrosievertPerHour: info.sensitivityCountsPerSecondPerMicrosievertPerHour,
                                          calibrationFactor: info.calibrationFactor, calibrationDate: info.calibrationDate,
                                          calibrationExpiry: info.calibrationExpiry, deadTimeSeconds: loop.configuration.detectorDeadTimeSeconds,
                                          lastCheck: recent)
        let id = try store.createScan(plan: plan, instrument: instrument, robotId: robotId, officer: officer, firmware: loop.firmwareVersions, id: id)
        return ScanSession(scanId: id, plan: plan, instrument: instrument, store: store, loop: loop, officer: officer, timeScale: timeScale)
    }

    /// Reopens an unfinished scan; the run carries on after its stored readings.
    public static func reopen(store: ScanStore, loop: ControlLoop, scanId: String, officer: String, timeScale: Double = 1) throws -> ScanSession {
        guard let status = try store.scanStatus(scanId) else { throw ScanStore.Failure(description: "no scan \(scanId)") }
        guard status == "running" else { throw ScanStore.Failure(description: "scan \(scanId) is \(status); only an unfinished scan can be resumed") }
        let (plan, instrument) = try store.plan(of: scanId)
        try store.audit(actor: officer, action: "scan.reopen", detail: scanId)
        return ScanSession(scanId: scanId, plan: plan, instrument: instrument, store: store, loop: loop, officer: officer, timeScale: timeScale)
    }

    /// Runs to the end and records how it ended. The verdict is stored before this returns.
    public func run(scanDate: UInt32 = ScanSession.today()) async -> Ending {
        do {
            let verdict = try await executor.run(scanDate: scanDate)
            do {
                try store.finish(scanId: scanId, verdict: verdict, status: .done, actor: officer)
            } catch {
                return .failed("the verdict could not be stored: \(error)")
            }
            return .done(verdict)
        } catch {
            switch error {
            case .refused:
                try? store.finish(scanId: scanId, verdict: nil, status: .refused, actor: officer)
                return .refused(error.description)
            case .aborted:
                try? store.finish(scanId: scanId, verdict: nil, status: .aborted, actor: officer)
                return .aborted
            case .record, .step, .interrupted, .lowBattery:
                // Left 'running': its readings stay and the scan can be resumed.
                return .failed(error.description)
            }
        }
    }

    /// Today as YYYYMMDD (UTC), the date calibration expiry is checked against.
    public static func today() -> UInt32 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day], from: Date())
        return UInt32((c.year ?? 2026) * 10000 + (c.month ?? 1) * 100 + (c.day ?? 1))
    }
}
