import Crypto
import Foundation
import GRDB
import Inspection

// Verification: SQLite's integrity, every hash chain, each finished scan's signed seal
// against its row, the verdict against its readings, the audit trail of every scan, the
// audit checkpoints, and optionally heads held outside the robot.
extension ScanStore {
    /// The fields of a finished scan that its seal covers, as canonical JSON (sorted keys):
    /// everything on its `scans` row but the plan and instrument (which its genesis hash
    /// covers), the verdict as a SHA-256, and the end of its reading chain.
    struct SealContent: Codable, Equatable {
        var format = 1
        var scanId: String
        var containerNumber: String
        var createdAt: String
        var robotId: String
        var firmware: String
        var officer: String
        var status: String
        var finishedAt: String
        var verdictSHA256: String
        var genesisHash: String
        var readingCount: Int64
        var lastReadingHash: String
    }

    /// The seal of a scan as its row and readings stand now (nil: no such scan).
    static func sealContent(_ db: Database, scanId: String) throws -> String? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM scans WHERE id = ?", arguments: [scanId]) else { return nil }
        let chain = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, (SELECT hash FROM readings WHERE scanId = ?1 ORDER BY seq DESC LIMIT 1) AS last "
                                     + "FROM readings WHERE scanId = ?1", arguments: [scanId])
        let genesis: String = row["genesisHash"]
        let verdict: String? = row["verdict"]
        let content = SealContent(scanId: scanId, containerNumber: row["containerNumber"], createdAt: row["createdAt"], robotId: row["robotId"],
                                  firmware: row["firmware"], officer: row["officer"], status: row["status"], finishedAt: row["finishedAt"] ?? "",
                                  verdictSHA256: verdict.map(hex) ?? "", genesisHash: genesis,
                                  readingCount: chain?["n"] ?? 0, lastReadingHash: chain?["last"] ?? genesis)
        return try json(content)
    }

    /// A head held outside the robot (copied from a printed report, or kept by the central
    /// review service): a scan's seal hash, or the audit chain's hash at a sequence number.
    public enum Anchor: Sendable, Equatable {
        case scan(id: String, sealHash: String)
        case audit(seq: Int64, hash: String)

        /// Lines `scan ID SEALHASH` or `audit SEQ HASH`; blank lines and `#` comments skipped.
        public static func parse(_ text: String) throws -> [Anchor] {
            var anchors: [Anchor] = []
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let words = line.split(separator: " ").map(String.init)
                if words.isEmpty || words[0].hasPrefix("#") { continue }
                if words.count == 3, words[0] == "scan" {
                    anchors.append(.scan(id: words[1], sealHash: words[2]))
                } else if words.count >= 3, words[0] == "audit", let seq = Int64(words[1]) {
                    anchors.append(.audit(seq: seq, hash: words[2]))
                } else {
                    throw Failure(description: "anchor line \(number + 1): '\(line)' is not 'scan ID SEALHASH' or 'audit SEQ HASH'")
                }
            }
            return anchors
        }
    }

    public struct VerificationReport: Sendable, Equatable {
        public var scans = 0
        public var readings = 0
        public var auditEntries = 0
        public var seals = 0
        public var checkpoints = 0
        public var anchors = 0
        public var verdictsRecomputed = 0
        public var integrity = "unchecked"
        /// The first `ScanStore.maximumProblemsListed` problems.
        public var problems: [String] = []
        /// Every problem found, listed or not.
        public var problemCount = 0
        /// The audit head when verified, and the key that signs seals and checkpoints.
        public var auditHeadSeq: Int64 = 0
        public var auditHeadHash = ""
        public var keyId = ""
        public var isValid: Bool { problemCount == 0 && integrity == "ok" }
    }

    /// Checks the store. Rows are streamed, not loaded: the memory it needs does not grow
    /// with the readings and audit entries, and at most `maximumProblemsListed` problems
    /// are listed (all are counted). `verifier` checks signatures (default: the store's own
    /// key); `anchors` are heads held elsewhere; `recomputeVerdicts` judges every finished
    /// scan again from its readings.
    public func verify(anchors: [Anchor] = [], verifier: ChainSigner? = nil, recomputeVerdicts: Bool = true) throws -> VerificationReport {
        let verifier = verifier ?? signer
        let checkpoints = Self.readCheckpoints(checkpointPath)
        return try pool.read { db in
            let findings = Findings()
            findings.report.keyId = verifier?.keyId ?? ""
            let problem = findings.problem
            findings.report.integrity = try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "no answer"
            let scans = try Row.fetchCursor(db, sql: "SELECT id, genesisHash, plan, instrument, status, verdict, finishedAt FROM scans ORDER BY rowid")
            var chains: [(id: String, genesis: String, status: String)] = []
            while let scan = try scans.next() {
                let id: String = scan["id"], genesis: String = scan["genesisHash"], plan: String = scan["plan"], instrument: String = scan["instrument"]
                // The genesis covers the plan (limits, grid) and the instrument (calibration).
                if Self.hex("scan|\(id)|\(plan)|\(instrument)") != genesis {
                    problem("scan \(id): its plan or instrument record was changed (genesis hash differs)")
                }
                chains.append((id, genesis, scan["status"]))
            }
            var known = Set<String>()
            for (scanId, genesis, status) in chains {
                known.insert(scanId)
                findings.report.scans += 1
                var previous = genesis
                let readings = try Row.fetchCursor(db, sql: "SELECT * FROM readings WHERE scanId = ? ORDER BY seq", arguments: [scanId])
                while let row = try readings.next() {
                    findings.report.readings += 1
                    let text = Self.canonical(scanId: scanId, kind: row["kind"], pointIndex: row["pointIndex"], ordinal: row["ordinal"],
                                              counts: row["counts"], seconds: row["seconds"], countRate: row["countRate"], rawDose: row["rawDose"],
                                              grossDose: row["grossDose"], instrumentDose: row["instrumentDose"], overload: row["overload"],
                                              takenAt: row["takenAt"], set: row["readingSet"])
                    let seq: Int64 = row["seq"]
                    let stored: String = row["hash"]
                    let linked: String = row["previousHash"]
                    if linked != previous { problem("scan \(scanId) reading \(seq): chain broken (previous hash differs)") }
                    if Self.hex(previous + "|" + text) != stored { problem("scan \(scanId) reading \(seq): contents do not match their hash") }
                    previous = stored
                }
                try checkSeal(db, scanId: scanId, status: status, verifier: verifier, findings: findings)
            }
            let orphans = try Row.fetchCursor(db, sql: "SELECT scanId, COUNT(*) AS n FROM readings WHERE scanId NOT IN (SELECT id FROM scans) GROUP BY scanId")
            while let row = try orphans.next() {
                problem("\(row["n"] as Int64) readings belong to scan \(row["scanId"] as String), which is not in the store (its row was deleted)")
            }
            let sealOrphans = try Row.fetchCursor(db, sql: "SELECT scanId FROM seals WHERE scanId NOT IN (SELECT id FROM scans)")
            while let row = try sealOrphans.next() { problem("scan \(row["scanId"] as String) was sealed but its row was deleted") }
            if recomputeVerdicts { try recompute(db, findings: findings) }
            try checkAudit(db, known: known, chains: chains, checkpoints: checkpoints, anchors: anchors, verifier: verifier, findings: findings)
            return findings.report
        }
    }

    private func checkSeal(_ db: Database, scanId: String, status: String, verifier: ChainSigner?, findings: Findings) throws {
        let problem = findings.problem
        let seal = try Row.fetchOne(db, sql: "SELECT content, hash, keyId, signature FROM seals WHERE scanId = ?", arguments: [scanId])
        guard let seal else {
            let legacy = try Bool.fetchOne(db, sql: "SELECT 1 FROM unsealed_before_v3 WHERE scanId = ?", arguments: [scanId]) ?? false
            if status != "running" && !legacy { problem("scan \(scanId) is \(status) but has no seal (ended outside the controller)") }
            return
        }
        findings.report.seals += 1
        let content: String = seal["content"], hash: String = seal["hash"], keyId: String = seal["keyId"], signature: String = seal["signature"]
        if status == "running" { problem("scan \(scanId) is sealed but its row says running again") }
        if Self.hex(content) != hash { problem("scan \(scanId): its seal does not match its own hash") }
        if let now = try Self.sealContent(db, scanId: scanId), now != content {
            problem("scan \(scanId): its record (status, verdict, officer, times or readings) differs from what was sealed when it ended")
        }
        if let verifier {
            if keyId != verifier.keyId {
                problem("scan \(scanId): sealed with key \(keyId), not this robot's key \(verifier.keyId)")
            } else if !verifier.isValid(signature, for: hash) {
                problem("scan \(scanId): the seal's signature is not valid (re-sealed without the key)")
            }
        }
    }

    /// Judges each finished scan again from its stored plan, instrument and readings and
    /// compares the outcome and the highest point with the stored verdict.
    private func recompute(_ db: Database, findings: Findings) throws {
        let problem = findings.problem
        let decoder = JSONDecoder()
        let rows = try Row.fetchCursor(db, sql: "SELECT id, plan, instrument, verdict, finishedAt FROM scans WHERE status = 'done'")
        var pending: [(String, String, String, String?, String?)] = []
        while let row = try rows.next() { pending.append((row["id"], row["plan"], row["instrument"], row["verdict"], row["finishedAt"])) }
        for (scanId, planText, instrumentText, verdictText, finishedAt) in pending {
            guard let verdictText, let stored = try? decoder.decode(Verdict.self, from: Data(verdictText.utf8)) else {
                problem("scan \(scanId) is done but its verdict is missing or unreadable")
                continue
            }
            guard let plan = try? decoder.decode(ScanPlan.self, from: Data(planText.utf8)),
                  let instrument = try? decoder.decode(InstrumentRecord.self, from: Data(instrumentText.utf8)) else {
                problem("scan \(scanId): its plan or instrument record cannot be read")
                continue
            }
            let recorded = try Row.fetchAll(db, sql: "SELECT * FROM readings WHERE scanId = ? ORDER BY seq", arguments: [scanId]).map(Self.recorded)
            let sets = AcceptedReadings(recorded, readingsPerPoint: plan.profile.readingsPerPoint)
            let day = (finishedAt.flatMap { Self.isoFormatter.date(from: $0) }).map(Self.yyyymmdd) ?? 0
            findings.report.verdictsRecomputed += 1
            do {
                let again = try Judgement.evaluate(plan: plan, instrument: instrument, scanDate: day, background: sets.background,
                                                   points: sets.points, remeasures: sets.remeasures)
                if again.outcome != stored.outcome || again.maxNetPointIndex != stored.maxNetPointIndex {
                    problem("scan \(scanId): the stored verdict (\(stored.outcome.rawValue)) is not what its readings give (\(again.outcome.rawValue))")
                }
            } catch {
                problem("scan \(scanId): its readings no longer give a verdict (\(error)); the stored one says \(stored.outcome.rawValue)")
            }
        }
    }

    private func checkAudit(_ db: Database, known: Set<String>, chains: [(id: String, genesis: String, status: String)],
                            checkpoints: [(seq: Int64, hash: String, keyId: String, signature: String)], anchors: [Anchor],
                            verifier: ChainSigner?, findings: Findings) throws {
        let problem = findings.problem
        var previous = Self.hex("audit")
        var created = Set<String>(), ended = Set<String>()
        var hashAt: [Int64: String] = [:]
        let wanted = Set(checkpoints.map(\.seq) + anchors.compactMap { if case .audit(let seq, _) = $0 { return seq } else { return nil } })
        var expectedSeq: Int64 = 1
        let audit = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY seq")
        while let row = try audit.next() {
            findings.report.auditEntries += 1
            let seq: Int64 = row["seq"], format: Int64 = row["format"]
            let at: String = row["at"], actor: String = row["actor"], action: String = row["action"], detail: String = row["detail"]
            let stored: String = row["hash"]
            let text = Self.auditText(format: format, previous: previous, seq: seq, at: at, actor: actor, action: action, detail: detail)
            if Self.hex(text) != stored || (row["previousHash"] as String) != previous {
                problem("audit entry \(seq): does not match the chain")
            }
            if format >= 2 && seq != expectedSeq { problem("audit entries \(expectedSeq) to \(seq - 1) are missing") }
            expectedSeq = seq + 1
            if action == "scan.create", let id = detail.split(separator: " ").first { created.insert(String(id)) }
            if action.hasPrefix("scan."), ["scan.done", "scan.aborted", "scan.refused"].contains(action) { ended.insert(detail) }
            if wanted.contains(seq) { hashAt[seq] = stored }
            previous = stored
            findings.report.auditHeadSeq = seq
            findings.report.auditHeadHash = stored
        }
        for chain in chains {
            if !created.contains(chain.id) { problem("scan \(chain.id) has no scan.create entry in the audit log") }
            if chain.status != "running" && !ended.contains(chain.id) { problem("scan \(chain.id) is \(chain.status) but the audit log never recorded its end") }
        }
        for checkpoint in checkpoints {
            findings.report.checkpoints += 1
            if let verifier, checkpoint.keyId == verifier.keyId, !verifier.isValid(checkpoint.signature, for: checkpoint.hash) {
                problem("audit checkpoint at entry \(checkpoint.seq): its signature is not valid")
            }
            guard let hash = hashAt[checkpoint.seq] else {
                problem("audit entry \(checkpoint.seq), signed in a checkpoint, is gone: the audit log was cut short")
                continue
            }
            if hash != checkpoint.hash { problem("audit entry \(checkpoint.seq) differs from its signed checkpoint: the log was rewritten") }
        }
        for anchor in anchors {
            findings.report.anchors += 1
            switch anchor {
            case let .scan(id, sealHash):
                let hash = try String.fetchOne(db, sql: "SELECT hash FROM seals WHERE scanId = ?", arguments: [id])
                if hash == nil { problem("scan \(id), held elsewhere with seal \(sealHash.prefix(16))…, has no seal here") }
                else if hash != sealHash { problem("scan \(id): its seal differs from the one held elsewhere (re-sealed)") }
            case let .audit(seq, hash):
                guard let here = hashAt[seq] else {
                    problem("audit entry \(seq), held elsewhere, is gone: the audit log was cut short")
                    continue
                }
                if here != hash { problem("audit entry \(seq) differs from the head held elsewhere: the log was rewritten") }
            }
        }
    }

    /// The report being built, and its problems (a class: the checks share it).
    final class Findings {
        var report = VerificationReport()

        func problem(_ text: String) {
            report.problemCount += 1
            if report.problems.count < ScanStore.maximumProblemsListed { report.problems.append(text) }
        }
    }

    static func readCheckpoints(_ path: String) -> [(seq: Int64, hash: String, keyId: String, signature: String)] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 5, words[0] == "audit", let seq = Int64(words[1]) else { return nil }
            return (seq, words[2], words[3], words[4])
        }
    }

    static func yyyymmdd(_ date: Date) -> UInt32 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return UInt32((c.year ?? 2026) * 10000 + (c.month ?? 1) * 100 + (c.day ?? 1))
    }

    /// Problems past this many are counted in `VerificationReport.problemCount` but not listed.
    public static let maximumProblemsListed = 1000
}
