import Crypto
import Foundation
import GRDB

// The audit log: every mutating call, allowed or refused, hash-chained; and signed
// checkpoints of its head, kept outside the database.
extension ScanStore {
    // MARK: Audit

    public func audit(actor: String, action: String, detail: String) throws {
        try pool.write { db in try Self.appendAudit(db, actor: actor, action: action, detail: detail) }
    }

    /// The same entry as `audit`, written on GRDB's writer queue while the caller is
    /// suspended rather than blocked: for request handlers on Swift's cooperative pool.
    public func recordAudit(actor: String, action: String, detail: String) async throws {
        try await pool.write { db in try Self.appendAudit(db, actor: actor, action: action, detail: detail) }
    }

    /// The most an audit entry keeps of each field, in UTF-8 bytes: a refused caller's text
    /// must not be able to fill the disk (an entry can never be pruned).
    public static let auditFieldBytes = (actor: 64, action: 128, detail: 1024)

    static func appendAudit(_ db: Database, actor rawActor: String, action rawAction: String, detail rawDetail: String) throws {
        let actor = StoredText.capped(rawActor, bytes: auditFieldBytes.actor)
        let action = StoredText.capped(rawAction, bytes: auditFieldBytes.action)
        let detail = StoredText.capped(rawDetail, bytes: auditFieldBytes.detail)
        let previous = try String.fetchOne(db, sql: "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1") ?? hex("audit")
        let at = isoFormatter.string(from: Date())
        // The sequence number is part of what the hash covers, so it is fixed here.
        let seq = (try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'audit'") ?? 0) + 1
        try db.execute(sql: "INSERT INTO audit (seq, at, actor, action, detail, previousHash, hash, format) VALUES (?, ?, ?, ?, ?, ?, ?, 2)",
                       arguments: [seq, at, actor, action, detail, previous,
                                   hex(auditText(format: 2, previous: previous, seq: seq, at: at, actor: actor, action: action, detail: detail))])
    }

    /// What an audit entry's hash covers. Format 1 (stores before v3) joined the fields
    /// with '|', which is ambiguous when a field holds one; format 2 is a JSON array of
    /// the previous hash, the sequence number and the fields.
    static func auditText(format: Int64, previous: String, seq: Int64, at: String, actor: String, action: String, detail: String) -> String {
        if format == 1 { return "\(previous)|\(at)|\(actor)|\(action)|\(detail)" }
        return (try? json([previous, String(seq), at, actor, action, detail])) ?? ""
    }


    /// The audit chain's head: the newest entry's sequence number and hash.
    public func auditHead() throws -> (seq: Int64, hash: String) {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            return (row?["seq"] ?? 0, row?["hash"] ?? Self.hex("audit"))
        }
    }

    /// Appends the audit head, signed, to the checkpoint file beside the store (one line:
    /// `audit SEQ HASH KEYID SIGNATURE`). A tail cut off the audit table after a
    /// checkpoint then shows in `verify`, unless the file was cut too; a copy of the
    /// file held elsewhere catches that as well.
    public func writeAuditCheckpoint() throws {
        guard let signer else { return }
        let head = try auditHead()
        let line = "audit \(head.seq) \(head.hash) \(signer.keyId) \(signer.sign(head.hash))\n"
        let fd = open(checkpointPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else {
            throw Failure(description: "cannot write audit checkpoints to \(checkpointPath): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw Failure(description: "cannot write audit checkpoints to \(checkpointPath)") }
    }
}
