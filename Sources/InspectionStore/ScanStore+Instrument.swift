import Foundation
import GRDB
import Inspection

extension ScanStore {
    // MARK: Check-source tests and the background trend

    /// Records a check-source test, and audits it.
    public func addInstrumentCheck(_ check: InstrumentCheck) throws {
        let content = try Self.json(check)
        try pool.write { db in
            try db.execute(sql: "INSERT INTO instrument_checks (serialNumber, takenAt, content, passed) VALUES (?, ?, ?, ?)",
                           arguments: [check.serialNumber, check.takenAt, content, check.passed])
        }
        try audit(actor: check.actor, action: "instrument.check",
                  detail: String(format: "%@ response %.4f (reference %.3f) %@", check.serialNumber, check.response,
                                 check.referenceMicrosievertsPerHour, check.passed ? "passed" : "FAILED"))
    }

    /// The newest `limit` check-source tests (of one detector if given), newest first.
    public func instrumentChecks(serialNumber: String? = nil, limit: Int = 50) throws -> [InstrumentCheck] {
        try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT content FROM instrument_checks WHERE ?1 IS NULL OR serialNumber = ?1 ORDER BY seq DESC LIMIT ?2
                """, arguments: [serialNumber, max(0, limit)])
        }.map { try JSONDecoder().decode(InstrumentCheck.self, from: Data($0.utf8)) }
    }

    /// Registers a detector's check source (its certificate), and audits it. The newest
    /// registration of a detector is the one in force.
    public func registerCheckSource(_ reference: CheckSourceReference) throws {
        let content = try Self.json(reference)
        try pool.write { db in
            try db.execute(sql: "INSERT INTO check_source_references (serialNumber, content) VALUES (?, ?)",
                           arguments: [reference.serialNumber, content])
        }
        try audit(actor: reference.actor, action: "instrument.checkSource",
                  detail: String(format: "%@ source %@ %.3f μSv/h on %u (half-life %.0f d)", reference.serialNumber, reference.sourceId,
                                 reference.referenceMicrosievertsPerHour, reference.referenceDate, reference.halfLifeDays))
    }

    /// The check source in force for a detector, or `nil` if none is registered.
    public func checkSourceReference(serialNumber: String) throws -> CheckSourceReference? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT content FROM check_source_references WHERE serialNumber = ? ORDER BY seq DESC LIMIT 1",
                                arguments: [serialNumber])
        }.map { try JSONDecoder().decode(CheckSourceReference.self, from: Data($0.utf8)) }
    }

    /// One finished scan's station background, for the trend per site.
    public struct BackgroundPoint: Sendable, Equatable, Codable {
        public var scanId: String
        public var robotId: String
        public var createdAt: String
        public var backgroundMicrosievertsPerHour: Double
        public var driftMicrosievertsPerHour: Double
        public var outcome: String
    }

    /// The station background of the newest `limit` finished scans, oldest first: how the
    /// site's background moves from day to day (a detector drifting shows here too).
    public func backgroundTrend(limit: Int = 100) throws -> [BackgroundPoint] {
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, robotId, createdAt, verdict FROM scans WHERE verdict IS NOT NULL ORDER BY rowid DESC LIMIT ?
                """, arguments: [max(0, limit)])
        }
        return rows.reversed().compactMap { row in
            guard let text: String = row["verdict"], let verdict = try? JSONDecoder().decode(Verdict.self, from: Data(text.utf8)) else { return nil }
            return BackgroundPoint(scanId: row["id"], robotId: row["robotId"], createdAt: row["createdAt"],
                                   backgroundMicrosievertsPerHour: verdict.backgroundMean, driftMicrosievertsPerHour: verdict.backgroundDrift,
                                   outcome: verdict.outcome.rawValue)
        }
    }
}
