import Crypto
import Foundation
import GRDB
import Inspection

/// Scans, every reading as it is taken, verdicts and an audit log, in one SQLite file
/// (WAL). Readings and audit entries are append-only (triggers refuse updates and
/// deletes) and hash-chained per scan, so tampering shows up in `verify`.
public final class ScanStore: Sendable {
    let pool: DatabasePool
    public let path: String
    /// Signs each finished scan's seal and the audit checkpoints; nil when the store was
    /// opened without its key (verification of a copy).
    public let signer: ChainSigner?
    /// Where signed audit checkpoints are appended, outside the database.
    public let checkpointPath: String

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Opens (or creates) the store. The signing key lives in its own file
    /// (`signingKeyPath`, default beside the store as `PATH.signing-key`; a deployment
    /// puts it where only root reads it); with `createSigningKey` a missing key is made.
    public init(path: String, signingKeyPath: String? = nil, createSigningKey: Bool = true) throws {
        self.path = path
        checkpointPath = path + ".checkpoints"
        let keyPath = signingKeyPath ?? path + ".signing-key"
        if createSigningKey || FileManager.default.fileExists(atPath: keyPath) {
            do {
                signer = try ChainSigner(keyPath: keyPath, create: createSigningKey)
            } catch {
                throw Failure(description: error.description)
            }
        } else {
            signer = nil
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE scans (
                    id TEXT PRIMARY KEY,
                    containerNumber TEXT NOT NULL,
                    createdAt TEXT NOT NULL,
                    plan TEXT NOT NULL,
                    instrument TEXT NOT NULL,
                    robotId TEXT NOT NULL,
                    firmware TEXT NOT NULL,
                    officer TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'aborted', 'refused')),
                    verdict TEXT,
                    finishedAt TEXT,
                    genesisHash TEXT NOT NULL
                );
                CREATE TABLE readings (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    scanId TEXT NOT NULL REFERENCES scans(id),
                    kind TEXT NOT NULL CHECK (kind IN ('background', 'point', 'remeasure')),
                    pointIndex INTEGER NOT NULL,
                    ordinal INTEGER NOT NULL,
                    counts INTEGER NOT NULL,
                    seconds REAL NOT NULL,
                    countRate REAL NOT NULL,
                    rawDose REAL NOT NULL,
                    grossDose REAL NOT NULL,
                    instrumentDose REAL NOT NULL,
                    overload INTEGER NOT NULL,
                    takenAt TEXT NOT NULL,
                    previousHash TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    UNIQUE (scanId, kind, pointIndex, ordinal)
                );
                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    at TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    previousHash TEXT NOT NULL,
                    hash TEXT NOT NULL
                );
                CREATE TRIGGER readings_append_only_update BEFORE UPDATE ON readings
                    BEGIN SELECT RAISE(ABORT, 'readings are append-only'); END;
                CREATE TRIGGER readings_append_only_delete BEFORE DELETE ON readings
                    BEGIN SELECT RAISE(ABORT, 'readings are append-only'); END;
                CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                """)
        }
        migrator.registerMigration("v2-users-calibrations") { db in
            try db.execute(sql: """
                CREATE TABLE users (
                    name TEXT PRIMARY KEY,
                    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'supervisor')),
                    credential TEXT NOT NULL,
                    createdAt TEXT NOT NULL,
                    createdBy TEXT NOT NULL
                );
                CREATE TABLE calibrations (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    serialNumber TEXT NOT NULL,
                    calibrationFactor REAL NOT NULL,
                    calibrationDate INTEGER NOT NULL,
                    calibrationExpiry INTEGER NOT NULL,
                    certificate TEXT NOT NULL,
                    recordedBy TEXT NOT NULL,
                    recordedAt TEXT NOT NULL
                );
                CREATE TRIGGER calibrations_append_only_update BEFORE UPDATE ON calibrations
                    BEGIN SELECT RAISE(ABORT, 'calibration records are append-only'); END;
                CREATE TRIGGER calibrations_append_only_delete BEFORE DELETE ON calibrations
                    BEGIN SELECT RAISE(ABORT, 'calibration records are append-only'); END;
                """)
        }
        migrator.registerMigration("v3-seals") { db in
            // A finished scan's own fields go into a signed seal at the end of its reading
            // chain; the scans row changes once (running -> its end) and is never deleted;
            // no reading is added to a finished scan; audit entries get an unambiguous
            // encoding that covers their sequence number (format 2).
            try db.execute(sql: """
                CREATE TABLE seals (
                    scanId TEXT PRIMARY KEY REFERENCES scans(id),
                    sealedAt TEXT NOT NULL,
                    content TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    keyId TEXT NOT NULL,
                    signature TEXT NOT NULL
                );
                CREATE TRIGGER seals_append_only_update BEFORE UPDATE ON seals
                    BEGIN SELECT RAISE(ABORT, 'seals are append-only'); END;
                CREATE TRIGGER seals_append_only_delete BEFORE DELETE ON seals
                    BEGIN SELECT RAISE(ABORT, 'seals are append-only'); END;
                CREATE TRIGGER scans_never_deleted BEFORE DELETE ON scans
                    BEGIN SELECT RAISE(ABORT, 'scans are never deleted'); END;
                CREATE TRIGGER scans_finish_once BEFORE UPDATE ON scans
                    WHEN OLD.status <> 'running' OR NEW.status = 'running'
                      OR NEW.id IS NOT OLD.id OR NEW.containerNumber IS NOT OLD.containerNumber
                      OR NEW.createdAt IS NOT OLD.createdAt OR NEW.plan IS NOT OLD.plan
                      OR NEW.instrument IS NOT OLD.instrument OR NEW.robotId IS NOT OLD.robotId
                      OR NEW.firmware IS NOT OLD.firmware OR NEW.officer IS NOT OLD.officer
                      OR NEW.genesisHash IS NOT OLD.genesisHash
                    BEGIN SELECT RAISE(ABORT, 'a scan changes once, from running to its end, and only its status, verdict and end time'); END;
                CREATE TRIGGER readings_only_while_running BEFORE INSERT ON readings
                    WHEN (SELECT status FROM scans WHERE id = NEW.scanId) IS NOT 'running'
                    BEGIN SELECT RAISE(ABORT, 'readings are added only while their scan runs'); END;
                ALTER TABLE audit ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
                CREATE TABLE unsealed_before_v3 (scanId TEXT PRIMARY KEY);
                INSERT INTO unsealed_before_v3 SELECT id FROM scans WHERE status <> 'running';
                CREATE TRIGGER unsealed_before_v3_fixed BEFORE INSERT ON unsealed_before_v3
                    BEGIN SELECT RAISE(ABORT, 'the list of scans ended before seals existed is fixed'); END;
                """)
        }
        migrator.registerMigration("v4-reading-sets") { db in
            // Which readings were taken together (a point's visit, a background round):
            // a set cut short is kept but never counted or topped up.
            try db.execute(sql: "ALTER TABLE readings ADD COLUMN readingSet INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v5-instrument-checks") { db in
            // The daily check-source tests of the detector (`InstrumentCheck`), append-only.
            try db.execute(sql: """
                CREATE TABLE instrument_checks (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    serialNumber TEXT NOT NULL,
                    takenAt TEXT NOT NULL,
                    content TEXT NOT NULL,
                    passed INTEGER NOT NULL
                );
                CREATE TRIGGER instrument_checks_append_only_update BEFORE UPDATE ON instrument_checks
                    BEGIN SELECT RAISE(ABORT, 'check-source records are append-only'); END;
                CREATE TRIGGER instrument_checks_append_only_delete BEFORE DELETE ON instrument_checks
                    BEGIN SELECT RAISE(ABORT, 'check-source records are append-only'); END;
                """)
        }
        migrator.registerMigration("v6-check-source-references") { db in
            // The check source registered per detector (`CheckSourceReference`), append-only:
            // the newest is in force, the older ones stay for the checks judged against them.
            try db.execute(sql: """
                CREATE TABLE check_source_references (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    serialNumber TEXT NOT NULL,
                    content TEXT NOT NULL
                );
                CREATE TRIGGER check_source_references_append_only_update BEFORE UPDATE ON check_source_references
                    BEGIN SELECT RAISE(ABORT, 'check-source references are append-only'); END;
                CREATE TRIGGER check_source_references_append_only_delete BEFORE DELETE ON check_source_references
                    BEGIN SELECT RAISE(ABORT, 'check-source references are append-only'); END;
                """)
        }
        return migrator
    }

    static func hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    // ISO8601DateFormatter is documented thread-safe; it is never mutated after creation.
    nonisolated(unsafe) static let isoFormatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    // MARK: Scans

    /// Where a scan's record stands. It changes once, from running to its end (the
    /// store's triggers refuse anything else).
    public enum ScanStatus: String, Sendable, Codable, CaseIterable {
        case running, done, aborted, refused
    }

    public struct ScanSummary: Sendable, Equatable {
        public let id: String
        public let containerNumber: String
        public let status: ScanStatus
        public let createdAt: String
    }

    /// Creates a scan record; its plan and instrument are stored with it.
    public func createScan(plan: ScanPlan, instrument: InstrumentRecord, robotId: String, officer: String,
                           firmware: [String: String] = [:], id: String? = nil) throws -> String {
        let id = id ?? UUID().uuidString.lowercased()
        let planJSON = try Self.json(plan)
        let instrumentJSON = try Self.json(instrument)
        let now = Self.isoFormatter.string(from: Date())
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO scans (id, containerNumber, createdAt, plan, instrument, robotId, firmware, officer, status, genesisHash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)
                """, arguments: [id, plan.container.number.text, now, planJSON, instrumentJSON, robotId, try Self.json(firmware), officer,
                                 Self.hex("scan|\(id)|\(planJSON)|\(instrumentJSON)")])
        }
        try audit(actor: officer, action: "scan.create", detail: "\(id) \(plan.container.number.text)")
        return id
    }

    /// The newest unfinished scan of a container, to resume.
    public func unfinishedScan(container: String) throws -> String? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT id FROM scans WHERE containerNumber = ? AND status = 'running' ORDER BY createdAt DESC LIMIT 1",
                                arguments: [container])
        }
    }

    public func plan(of scanId: String) throws -> (ScanPlan, InstrumentRecord) {
        let row = try pool.read { db in try Row.fetchOne(db, sql: "SELECT plan, instrument FROM scans WHERE id = ?", arguments: [scanId]) }
        guard let row else { throw Failure(description: "no scan \(scanId) in \(path)") }
        let decoder = JSONDecoder()
        let planText: String = row["plan"]
        let instrumentText: String = row["instrument"]
        return (try decoder.decode(ScanPlan.self, from: Data(planText.utf8)),
                try decoder.decode(InstrumentRecord.self, from: Data(instrumentText.utf8)))
    }

    /// Ends a scan: its status, verdict and end time, and in the same transaction its
    /// signed seal (the scan's own fields at the end of its reading chain). A scan ends
    /// once; a second call is refused.
    public func finish(scanId: String, verdict: Verdict?, status: ScanStatus, actor: String) throws {
        let verdictJSON = try verdict.map { try Self.json($0) }
        let finishedAt = Self.isoFormatter.string(from: Date())
        let signer = self.signer
        try pool.write { db in
            guard let current = try String.fetchOne(db, sql: "SELECT status FROM scans WHERE id = ?", arguments: [scanId]) else {
                throw Failure(description: "no scan \(scanId)")
            }
            guard current == "running" else {
                throw Failure(description: "scan \(scanId) has already ended (\(current)); a finished scan is never changed")
            }
            try db.execute(sql: "UPDATE scans SET status = ?, verdict = ?, finishedAt = ? WHERE id = ?",
                           arguments: [status.rawValue, verdictJSON, finishedAt, scanId])
            guard let seal = try Self.sealContent(db, scanId: scanId) else { throw Failure(description: "no scan \(scanId)") }
            let hash = Self.hex(seal)
            try db.execute(sql: "INSERT INTO seals (scanId, sealedAt, content, hash, keyId, signature) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [scanId, finishedAt, seal, hash, signer?.keyId ?? "unsigned", signer?.sign(hash) ?? ""])
        }
        try audit(actor: actor, action: "scan.\(status.rawValue)", detail: scanId)
        try writeAuditCheckpoint()
    }

    /// The newest `limit` scans (created before the scan `before`, if given), oldest first.
    /// A store keeps months of scans: callers page through them rather than load them all.
    public func scans(limit: Int = 100, before: String? = nil) throws -> [ScanSummary] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, containerNumber, status, createdAt FROM scans
                WHERE ?1 IS NULL OR rowid < (SELECT rowid FROM scans WHERE id = ?1)
                ORDER BY rowid DESC LIMIT ?2
                """, arguments: [before, max(0, limit)])
            return rows.reversed().map(Self.summary)
        }
    }

    /// One scan's summary, or nil if there is no such scan.
    public func scanSummary(id: String) throws -> ScanSummary? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT id, containerNumber, status, createdAt FROM scans WHERE id = ?", arguments: [id]).map(Self.summary)
        }
    }

    static func summary(_ row: Row) -> ScanSummary {
        let stored: String = row["status"]
        // The table's CHECK constraint admits only these; a row that says otherwise was
        // written outside the controller and is shown as still running (unfinished).
        return ScanSummary(id: row["id"], containerNumber: row["containerNumber"], status: ScanStatus(rawValue: stored) ?? .running,
                           createdAt: row["createdAt"])
    }

    public func verdict(of scanId: String) throws -> Verdict? {
        let text = try pool.read { db in try String.fetchOne(db, sql: "SELECT verdict FROM scans WHERE id = ?", arguments: [scanId]) }
        return try text.map { try JSONDecoder().decode(Verdict.self, from: Data($0.utf8)) }
    }

    /// The report of a finished scan, from what the store holds.
    public func report(scanId: String) throws -> ScanReport {
        let meta = try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT robotId, firmware, officer, createdAt, finishedAt, verdict FROM scans WHERE id = ?", arguments: [scanId])
        }
        guard let meta else { throw Failure(description: "no scan \(scanId) in \(path); `robotctl scans --store \(path)` lists them") }
        guard let verdictText: String = meta["verdict"] else {
            throw Failure(description: "scan \(scanId) has no verdict yet (it is still running, or was aborted)")
        }
        let verdict = try JSONDecoder().decode(Verdict.self, from: Data(verdictText.utf8))
        let (plan, instrument) = try self.plan(of: scanId)
        let sets = try readingSets(scanId: scanId)
        let chain = try pool.read { db in
            try String.fetchOne(db, sql: "SELECT hash FROM readings WHERE scanId = ? ORDER BY seq DESC LIMIT 1", arguments: [scanId])
        } ?? ""
        let seal = try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT hash, keyId, signature FROM seals WHERE scanId = ?", arguments: [scanId])
        }.map { RecordSeal(hash: $0["hash"], keyId: $0["keyId"], publicKey: signer?.publicKeyHex ?? "", signature: $0["signature"]) }
        let firmwareText: String = meta["firmware"]
        let firmware = (try? JSONDecoder().decode([String: String].self, from: Data(firmwareText.utf8))) ?? [:]
        return ScanReport(
            scanId: scanId, robotId: meta["robotId"], firmware: firmware, officer: meta["officer"], startedAt: meta["createdAt"],
            finishedAt: meta["finishedAt"] ?? "", plan: plan, instrument: instrument,
            background: sets.background, points: sets.points, remeasures: sets.remeasures,
            verdict: verdict, source: verdict.outcome == .pass ? nil : SourceLocalisation.estimate(plan: plan, verdict: verdict),
            chainHash: chain, seal: seal,
            hotSpots: verdict.rule != nil && verdict.outcome >= .anomalous ? SourceLocalisation.hotSpots(plan: plan, verdict: verdict) : nil)
    }

    /// A `ScanRecord` that writes this scan's readings here.
    public func record(for scanId: String) -> ScanRecord {
        StoredScanRecord(store: self, scanId: scanId)
    }

    // MARK: Readings

    /// A scan's readings that count, by kind, from one read of the store: one set per
    /// point from the newest survey round (see `AcceptedReadings`).
    public struct ReadingSets: Sendable {
        public var background: [DoseReading] = []
        public var points: [Int: [DoseReading]] = [:]
        public var remeasures: [Int: [DoseReading]] = [:]
        /// Readings kept but not counted (cut-short sets, earlier rounds).
        public var superseded = 0
    }

    public func readingSets(scanId: String) throws -> ReadingSets {
        let (plan, _) = try plan(of: scanId)
        let accepted = AcceptedReadings(try readings(scanId: scanId), readingsPerPoint: plan.profile.readingsPerPoint)
        return ReadingSets(background: accepted.background, points: accepted.points, remeasures: accepted.remeasures,
                           superseded: accepted.supersededReadings)
    }

    /// Every reading of a scan, in the order taken.
    public func readings(scanId: String) throws -> [RecordedReading] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM readings WHERE scanId = ? ORDER BY seq", arguments: [scanId]).map(Self.recorded)
        }
    }

    static func recorded(_ row: Row) -> RecordedReading {
        RecordedReading(kind: RecordedReading.Kind(rawValue: row["kind"]) ?? .point, pointIndex: row["pointIndex"], ordinal: row["ordinal"],
                        set: row["readingSet"], reading: reading(row))
    }

    static func reading(_ row: Row) -> DoseReading {
        let takenAt: String = row["takenAt"]
        return DoseReading(counts: UInt32(clamping: row["counts"] as Int64), seconds: row["seconds"], countRatePerSecond: row["countRate"],
                           rawDoseRate: row["rawDose"], grossDoseRate: row["grossDose"], instrumentDoseRate: row["instrumentDose"],
                           overload: (row["overload"] as Int64) != 0,
                           takenAt: isoFormatter.date(from: takenAt) ?? Date(timeIntervalSince1970: 0))
    }

    /// The canonical text a reading's hash covers (its set only when not 0, so readings
    /// stored before sets existed keep their hashes).
    static func canonical(scanId: String, kind: String, pointIndex: Int, ordinal: Int, counts: Int64, seconds: Double, countRate: Double,
                          rawDose: Double, grossDose: Double, instrumentDose: Double, overload: Int64, takenAt: String, set: Int64 = 0) -> String {
        "\(scanId)|\(kind)|\(pointIndex)|\(ordinal)|\(counts)|\(seconds)|\(countRate)|\(rawDose)|\(grossDose)|\(instrumentDose)|\(overload)|\(takenAt)"
            + (set == 0 ? "" : "|set=\(set)")
    }

    func append(scanId: String, kind: String, pointIndex: Int, ordinal: Int, set: Int, reading r: DoseReading) async throws {
        let takenAt = Self.isoFormatter.string(from: r.takenAt)
        try await pool.write { db in
            let previous = try String.fetchOne(db, sql: "SELECT hash FROM readings WHERE scanId = ? ORDER BY seq DESC LIMIT 1", arguments: [scanId])
                ?? String.fetchOne(db, sql: "SELECT genesisHash FROM scans WHERE id = ?", arguments: [scanId])
            guard let previous else { throw Failure(description: "no scan \(scanId)") }
            let text = Self.canonical(scanId: scanId, kind: kind, pointIndex: pointIndex, ordinal: ordinal, counts: Int64(r.counts),
                                      seconds: r.seconds, countRate: r.countRatePerSecond, rawDose: r.rawDoseRate, grossDose: r.grossDoseRate,
                                      instrumentDose: r.instrumentDoseRate, overload: r.overload ? 1 : 0, takenAt: takenAt, set: Int64(set))
            try db.execute(sql: """
                INSERT INTO readings (scanId, kind, pointIndex, ordinal, counts, seconds, countRate, rawDose, grossDose, instrumentDose,
                                      overload, takenAt, previousHash, hash, readingSet)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [scanId, kind, pointIndex, ordinal, Int64(r.counts), r.seconds, r.countRatePerSecond, r.rawDoseRate,
                                 r.grossDoseRate, r.instrumentDoseRate, r.overload ? 1 : 0, takenAt, previous, Self.hex(previous + "|" + text), set])
        }
    }
}

/// A scan's readings in the store.
struct StoredScanRecord: ScanRecord {
    let store: ScanStore
    let scanId: String

    func recordedReadings() async throws -> [RecordedReading] {
        try store.readings(scanId: scanId)
    }

    func append(_ reading: DoseReading, kind: RecordedReading.Kind, pointIndex: Int, ordinal: Int, set: Int) async throws {
        try await store.append(scanId: scanId, kind: kind.rawValue, pointIndex: pointIndex, ordinal: ordinal, set: set, reading: reading)
    }
}
