import Foundation
import GRDB
import Inspection

extension ScanStore {
    /// A scan as an N42.42 export (`ScanExport`). A finished scan exports its report; an
    /// unfinished, aborted or refused one exports every reading that counts so far, marked
    /// incomplete, with no verdict. Check `completeness` to tell the user which it is.
    public func export(scanId: String) throws -> ScanExport {
        guard let summary = try scanSummary(id: scanId) else {
            throw Failure(description: "no scan \(scanId) in \(path); `robotctl scans --store \(path)` lists them")
        }
        let sets = try readingSets(scanId: scanId)
        if summary.status == .done {
            return ScanExport(report: try report(scanId: scanId), supersededReadings: sets.superseded)
        }
        let meta = try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT robotId, firmware, officer, createdAt, finishedAt FROM scans WHERE id = ?", arguments: [scanId])
        }
        guard let meta else { throw Failure(description: "no scan \(scanId) in \(path)") }
        let (plan, instrument) = try self.plan(of: scanId)
        let chain = try pool.read { db in
            try String.fetchOne(db, sql: "SELECT hash FROM readings WHERE scanId = ? ORDER BY seq DESC LIMIT 1", arguments: [scanId])
        } ?? ""
        let firmwareText: String = meta["firmware"]
        let firmware = (try? JSONDecoder().decode([String: String].self, from: Data(firmwareText.utf8))) ?? [:]
        let status = switch summary.status {
        case .running: "unfinished (still running, or stopped and waiting to be resumed)"
        case .aborted: "aborted by the officer"
        case .refused: "refused (no verdict could be computed from its readings)"
        case .done: "done"
        }
        return ScanExport(scanId: scanId, robotId: meta["robotId"], firmware: firmware, officer: meta["officer"], startedAt: meta["createdAt"],
                          finishedAt: meta["finishedAt"] ?? "", plan: plan, instrument: instrument,
                          readings: ScanExport.inOrder(background: sets.background, points: sets.points, remeasures: sets.remeasures),
                          supersededReadings: sets.superseded, verdict: nil, hotSpots: [], chainHash: chain, seal: nil,
                          completeness: .incomplete(status: status))
    }
}

extension ScanStore {
    /// What `writeReports` wrote.
    public struct WrittenReports: Sendable {
        /// The N42.42 file: always written.
        public let n42Path: String
        /// The printable report, when the scan has a verdict (JSON and CSV beside it).
        public let htmlPath: String?
        public let export: ScanExport
    }

    /// Writes a scan's report files into `directory`: `ID.json`, `ID.csv`, `ID.html` and
    /// `ID.n42` for a finished scan; only `ID.n42`, marked incomplete, for one without a
    /// verdict (the other formats are built around the verdict).
    public func writeReports(scanId: String, to directory: String, now: Date = Date()) throws -> WrittenReports {
        let export = try export(scanId: scanId)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = (directory as NSString).appendingPathComponent(scanId)
        var html: String?
        if export.completeness == .complete {
            html = try report(scanId: scanId).write(to: directory)
        }
        try export.n42XML(exportedAt: now).write(toFile: base + ".n42", atomically: true, encoding: .utf8)
        return WrittenReports(n42Path: base + ".n42", htmlPath: html, export: export)
    }
}
