import Foundation
import RobotAPI
import GRDB

/// Users, calibration records and reading the audit log back.
extension ScanStore {
    /// A user account. `credential` is an opaque KDF string made by the command server;
    /// the store never sees a password.
    public struct UserAccount: Sendable, Equatable, Codable {
        public var name: String
        public var role: Role
        public var credential: String
        public var createdAt: String
        public var createdBy: String
    }

    public func addUser(name: String, role: Role, credential: String, by actor: String) throws {
        do {
            try pool.write { db in
                try db.execute(sql: "INSERT INTO users (name, role, credential, createdAt, createdBy) VALUES (?, ?, ?, ?, ?)",
                               arguments: [name, role.rawValue, credential, Self.isoFormatter.string(from: Date()), actor])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw Failure(description: "user '\(name)' already exists")
        }
        try audit(actor: actor, action: "user.add", detail: "\(name) role=\(role.rawValue)")
    }

    public func user(named name: String) throws -> UserAccount? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]).map { try Self.account($0) }
        }
    }

    public func users() throws -> [UserAccount] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY name").map { try Self.account($0) } }
    }

    public func userCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") ?? 0 }
    }

    /// Changes a role or a credential (nil leaves it).
    public func updateUser(name: String, role: Role?, credential: String?, by actor: String) throws {
        let changed = try pool.write { db -> Int in
            if let role { try db.execute(sql: "UPDATE users SET role = ? WHERE name = ?", arguments: [role.rawValue, name]) }
            if let credential { try db.execute(sql: "UPDATE users SET credential = ? WHERE name = ?", arguments: [credential, name]) }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE name = ?", arguments: [name]) ?? 0
        }
        guard changed > 0 else { throw Failure(description: "no user '\(name)'") }
        var what: [String] = []
        if let role { what.append("role=\(role.rawValue)") }
        if credential != nil { what.append("password changed") }
        try audit(actor: actor, action: "user.update", detail: "\(name) \(what.joined(separator: " "))")
    }

    public func removeUser(name: String, by actor: String) throws {
        let removed = try pool.write { db -> Int in
            try db.execute(sql: "DELETE FROM users WHERE name = ?", arguments: [name])
            return db.changesCount
        }
        guard removed > 0 else { throw Failure(description: "no user '\(name)'") }
        try audit(actor: actor, action: "user.remove", detail: name)
    }

    static func account(_ row: Row) throws -> UserAccount {
        let name: String = row["name"]
        let stored: String = row["role"]
        guard let role = Role(rawValue: stored) else {
            throw Failure(description: "user '\(name)' has role '\(stored)' in the store, which is not a role (allowed: "
                          + Role.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        return UserAccount(name: name, role: role, credential: row["credential"], createdAt: row["createdAt"], createdBy: row["createdBy"])
    }

    // MARK: Calibration records

    /// A calibration certificate entered by a supervisor; the newest one for a detector
    /// serial number is the one in force.
    public struct CalibrationRecord: Sendable, Equatable, Codable {
        public var serialNumber: String
        public var calibrationFactor: Double
        /// YYYYMMDD.
        public var calibrationDate: UInt32
        public var calibrationExpiry: UInt32
        public var certificate: String
        public var recordedBy: String
        public var recordedAt: String

        public init(serialNumber: String, calibrationFactor: Double, calibrationDate: UInt32, calibrationExpiry: UInt32,
                    certificate: String, recordedBy: String = "", recordedAt: String = "") {
            self.serialNumber = serialNumber
            self.calibrationFactor = calibrationFactor
            self.calibrationDate = calibrationDate
            self.calibrationExpiry = calibrationExpiry
            self.certificate = certificate
            self.recordedBy = recordedBy
            self.recordedAt = recordedAt
        }
    }

    public func addCalibration(_ record: CalibrationRecord, by actor: String) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO calibrations (serialNumber, calibrationFactor, calibrationDate, calibrationExpiry, certificate, recordedBy, recordedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.serialNumber, record.calibrationFactor, Int64(record.calibrationDate), Int64(record.calibrationExpiry),
                                 record.certificate, actor, Self.isoFormatter.string(from: Date())])
        }
        try audit(actor: actor, action: "calibration.add",
                  detail: "\(record.serialNumber) factor=\(record.calibrationFactor) \(record.calibrationDate)-\(record.calibrationExpiry) \(record.certificate)")
    }

    public func calibrations() throws -> [CalibrationRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM calibrations ORDER BY seq").map {
                CalibrationRecord(serialNumber: $0["serialNumber"], calibrationFactor: $0["calibrationFactor"],
                                  calibrationDate: UInt32($0["calibrationDate"] as Int64), calibrationExpiry: UInt32($0["calibrationExpiry"] as Int64),
                                  certificate: $0["certificate"], recordedBy: $0["recordedBy"], recordedAt: $0["recordedAt"])
            }
        }
    }

    // MARK: Audit log

    public struct AuditEntry: Sendable, Equatable, Codable {
        public var seq: Int64
        public var at: String
        public var actor: String
        public var action: String
        public var detail: String
    }

    /// The newest `limit` audit entries, oldest first; only those after `afterSeq` if given.
    public func auditEntries(limit: Int = 200, afterSeq: Int64 = 0) throws -> [AuditEntry] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM (SELECT * FROM audit WHERE seq > ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                             arguments: [afterSeq, limit]).map {
                AuditEntry(seq: $0["seq"], at: $0["at"], actor: $0["actor"], action: $0["action"], detail: $0["detail"])
            }
        }
    }

    /// A scan's status (running, done, aborted, refused), or nil if there is no such scan.
    public func scanStatus(_ scanId: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT status FROM scans WHERE id = ?", arguments: [scanId]) }
    }

    /// Scans not finished (status running), newest first: candidates to resume.
    public func unfinishedScans() throws -> [ScanSummary] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, containerNumber, status, createdAt FROM scans WHERE status = 'running' ORDER BY rowid DESC")
                .map(Self.summary)
        }
    }
}
