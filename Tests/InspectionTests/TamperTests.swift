import Foundation
import GRDB
import Inspection
@testable import InspectionStore
import RobotTesting
import Testing

/// An insider with root edits the store with the sqlite3 tools (triggers dropped first, as
/// root can). Each case says what catches it: the robot alone (hash chains, the genesis,
/// the signed seal, the recomputed verdict, the signed audit checkpoints), or only a head
/// held elsewhere (a printed report's seal line, the central service's copy) when the
/// insider also holds the signing key and rewrites everything consistently.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct TamperTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A finished demo-profile scan of a clean 20 ft container: readings, a real verdict
    /// from `Judgement`, the seal and an audit checkpoint.
    struct Finished {
        let store: ScanStore
        let path: String
        let scanId: String
        let verdict: Verdict
    }

    func finishedScan() async throws -> Finished {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tamper-\(UUID().uuidString).sqlite").path
        let store = try ScanStore(path: path)
        let profile = try ProcedureProfile.load(path: Self.root.appendingPathComponent("profiles/demo.yaml").path)
        let plan = ScanPlan(container: ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .twentyFoot, xMetres: 0, yMetres: 0),
                            profile: profile)
        let instrument = InstrumentRecord(serialNumber: "GD-1", sensitivityCountsPerSecondPerMicrosievertPerHour: 300, calibrationFactor: 1.0,
                                          calibrationDate: 20260101, calibrationExpiry: 20991231)
        let session = try store.createScan(plan: plan, instrument: instrument, robotId: "RIR-01", officer: "officer")
        let record = store.record(for: session)
        var background: [DoseReading] = []
        var points: [Int: [DoseReading]] = [:]
        func reading(_ counts: UInt32, seconds: Double) -> DoseReading {
            let rate = Double(counts) / seconds
            return DoseReading(counts: counts, seconds: seconds, countRatePerSecond: rate, rawDoseRate: rate / 300, grossDoseRate: rate / 300,
                               instrumentDoseRate: rate / 300, overload: false, takenAt: Date())
        }
        for i in 0..<profile.backgroundReadings {
            let r = reading(UInt32(60 + i % 3), seconds: profile.backgroundIntervalSeconds)
            try await record.appendBackground(r, ordinal: i)
            background.append(r)
        }
        for point in plan.points {
            let r = reading(UInt32(30 + point.index % 4), seconds: profile.readingSeconds)
            try await record.appendPoint(point.index, r, ordinal: 0, remeasure: false)
            points[point.index] = [r]
        }
        let verdict = try Judgement.evaluate(plan: plan, instrument: instrument, scanDate: ScanStore.yyyymmdd(Date()), background: background,
                                             points: points, remeasures: [:])
        try store.finish(scanId: session, verdict: verdict, status: .done, actor: "officer")
        return Finished(store: store, path: path, scanId: session, verdict: verdict)
    }

    /// Raw SQL on the file, as an insider with the sqlite3 shell would.
    func tamper(_ path: String, _ sql: String, arguments: StatementArguments = []) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in try db.execute(sql: sql, arguments: arguments) }
    }

    func problems(_ store: ScanStore, anchors: [ScanStore.Anchor] = []) throws -> [String] {
        try store.verify(anchors: anchors).problems
    }

    @Test func anUntouchedStoreVerifiesWithItsSealAndVerdict() async throws {
        let f = try await finishedScan()
        let report = try f.store.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.seals == 1 && report.verdictsRecomputed == 1 && report.checkpoints == 1)
        let sealed = try f.store.report(scanId: f.scanId)
        #expect(sealed.seal?.keyId == f.store.signer?.keyId)
        #expect(sealed.html().contains(sealed.seal?.hash ?? "missing"))
        // A finished scan is never changed again through the store either.
        #expect(throws: (any Error).self) { try f.store.finish(scanId: f.scanId, verdict: nil, status: .aborted, actor: "x") }
    }

    @Test func theTriggersRefuseEditsWithoutDroppingThem() async throws {
        let f = try await finishedScan()
        #expect(throws: (any Error).self) { try tamper(f.path, "UPDATE scans SET verdict = NULL") }
        #expect(throws: (any Error).self) { try tamper(f.path, "UPDATE scans SET status = 'running'") }
        #expect(throws: (any Error).self) { try tamper(f.path, "DELETE FROM scans") }
        #expect(throws: (any Error).self) { try tamper(f.path, "DELETE FROM seals") }
        #expect(throws: (any Error).self) {
            try tamper(f.path, "INSERT INTO readings (scanId, kind, pointIndex, ordinal, counts, seconds, countRate, rawDose, grossDose, "
                       + "instrumentDose, overload, takenAt, previousHash, hash) VALUES (?, 'point', 0, 9, 1, 1, 1, 1, 1, 1, 0, 'x', 'x', 'x')",
                       arguments: [f.scanId])
        }
        #expect(try f.store.verify().isValid)
    }

    /// Case 1 of the review: one UPDATE turns an outcome into another.
    @Test func anEditedVerdictIsCaughtByTheSealAndByJudgingAgain() async throws {
        let f = try await finishedScan()
        var forged = f.verdict
        forged.outcome = f.verdict.outcome == .pass ? .exceeds : .pass
        let json = String(decoding: try JSONEncoder().encode(forged), as: UTF8.self)
        try tamper(f.path, "DROP TRIGGER scans_finish_once; UPDATE scans SET verdict = ?", arguments: [json])
        let found = try problems(f.store)
        #expect(found.contains { $0.contains("differs from what was sealed") }, "\(found)")
        #expect(found.contains { $0.contains("is not what its readings give") }, "\(found)")
    }

    /// Case 2: the plan's limit (or the instrument's calibration) edited.
    @Test func anEditedPlanIsCaughtByTheGenesis() async throws {
        let f = try await finishedScan()
        try tamper(f.path, "DROP TRIGGER scans_finish_once; UPDATE scans SET plan = replace(plan, '\"limitAboveBackground\":0.25', '\"limitAboveBackground\":2.5')")
        let found = try problems(f.store)
        #expect(found.contains { $0.contains("genesis hash differs") }, "\(found)")
    }

    /// Case 3: a scan deleted in the sqlite3 shell.
    @Test func aDeletedScanLeavesOrphansThatAreCaught() async throws {
        let f = try await finishedScan()
        try tamper(f.path, "PRAGMA foreign_keys = OFF; DROP TRIGGER scans_never_deleted; DELETE FROM scans")
        let found = try problems(f.store)
        #expect(found.contains { $0.contains("which is not in the store") }, "\(found)")
        #expect(found.contains { $0.contains("was sealed but its row was deleted") }, "\(found)")
    }

    /// Case 4: the audit tail cut off. The signed checkpoint written at the scan's end
    /// catches it; a tail written after the last checkpoint needs a head held elsewhere.
    @Test func aTruncatedAuditTailIsCaughtByTheCheckpointOrAnAnchor() async throws {
        let f = try await finishedScan()
        let head = try f.store.auditHead()
        try tamper(f.path, "DROP TRIGGER audit_append_only_delete; DELETE FROM audit WHERE seq >= ?", arguments: [head.seq])
        let found = try problems(f.store)
        #expect(found.contains { $0.contains("the audit log was cut short") }, "\(found)")

        let g = try await finishedScan()
        try g.store.audit(actor: "sam", action: "user.add", detail: "mallory operator")
        let later = try g.store.auditHead()
        try tamper(g.path, "DROP TRIGGER audit_append_only_delete; DELETE FROM audit WHERE seq = ?", arguments: [later.seq])
        #expect(try g.store.verify().isValid, "past the last checkpoint the robot alone cannot tell")
        let anchored = try problems(g.store, anchors: [.audit(seq: later.seq, hash: later.hash)])
        #expect(anchored.contains { $0.contains("is gone") }, "\(anchored)")
    }

    /// Case 5: an audit row rewritten and the chain recomputed after it.
    @Test func aRechainedAuditLogIsCaughtByTheSignedCheckpoint() async throws {
        let f = try await finishedScan()
        let queue = try DatabaseQueue(path: f.path)
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: "DROP TRIGGER audit_append_only_update")
            var previous = ScanStore.hex("audit")
            for row in try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY seq") {
                let seq: Int64 = row["seq"]
                let actor = (row["actor"] as String) == "officer" ? "someone else" : row["actor"] as String
                let hash = ScanStore.hex(ScanStore.auditText(format: 2, previous: previous, seq: seq, at: row["at"], actor: actor,
                                                             action: row["action"], detail: row["detail"]))
                try db.execute(sql: "UPDATE audit SET actor = ?, previousHash = ?, hash = ? WHERE seq = ?", arguments: [actor, previous, hash, seq])
                previous = hash
            }
        }
        let found = try problems(f.store)
        #expect(found.contains { $0.contains("differs from its signed checkpoint") }, "\(found)")
    }

    /// Case 6: text moved between fields across a '|'. Format 2 hashes a JSON array, so
    /// the same joined text no longer gives the same hash.
    @Test func textShiftedBetweenAuditFieldsNoLongerMatches() {
        let a = ScanStore.auditText(format: 2, previous: "p", seq: 1, at: "t", actor: "sam|user.add", action: "x", detail: "d")
        let b = ScanStore.auditText(format: 2, previous: "p", seq: 1, at: "t", actor: "sam", action: "user.add|x", detail: "d")
        #expect(a != b)
        let oldA = ScanStore.auditText(format: 1, previous: "p", seq: 1, at: "t", actor: "sam|user.add", action: "x", detail: "d")
        let oldB = ScanStore.auditText(format: 1, previous: "p", seq: 1, at: "t", actor: "sam", action: "user.add|x", detail: "d")
        #expect(oldA == oldB, "the old encoding was ambiguous")
    }

    /// An editor without the key recomputes the seal after forging the record: the
    /// signature gives it away.
    @Test func aResealedRecordWithoutTheKeyIsCaughtByTheSignature() async throws {
        let f = try await finishedScan()
        let queue = try DatabaseQueue(path: f.path)
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: "DROP TRIGGER scans_finish_once; DROP TRIGGER seals_append_only_update")
            try db.execute(sql: "UPDATE scans SET officer = 'someone else'")
            let content = try #require(try ScanStore.sealContent(db, scanId: f.scanId))
            try db.execute(sql: "UPDATE seals SET content = ?, hash = ?", arguments: [content, ScanStore.hex(content)])
        }
        let found = try problems(f.store)
        #expect(found.contains { $0.contains("signature is not valid") }, "\(found)")
        #expect(!found.contains { $0.contains("differs from what was sealed") })
    }

    /// An insider with the key rewrites a whole history consistently: readings re-chained,
    /// the verdict judged again from them, the seal re-signed. The robot alone cannot tell;
    /// the seal line of the printed report (or the central copy) can.
    @Test func aWholeHistoryRewrittenWithTheKeyIsCaughtOnlyByAHeadHeldElsewhere() async throws {
        let f = try await finishedScan()
        let printed = try #require(try f.store.report(scanId: f.scanId).seal)
        let queue = try DatabaseQueue(path: f.path)
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: """
                DROP TRIGGER readings_append_only_update; DROP TRIGGER scans_finish_once; DROP TRIGGER seals_append_only_update;
                """)
            // Lower every point reading a little and re-chain them.
            var previous: String = try #require(try String.fetchOne(db, sql: "SELECT genesisHash FROM scans"))
            for row in try Row.fetchAll(db, sql: "SELECT * FROM readings ORDER BY seq") {
                let counts = max(0, (row["counts"] as Int64) - ((row["kind"] as String) == "point" ? 1 : 0))
                let text = ScanStore.canonical(scanId: f.scanId, kind: row["kind"], pointIndex: row["pointIndex"], ordinal: row["ordinal"],
                                               counts: counts, seconds: row["seconds"], countRate: row["countRate"], rawDose: row["rawDose"],
                                               grossDose: row["grossDose"], instrumentDose: row["instrumentDose"], overload: row["overload"],
                                               takenAt: row["takenAt"])
                let hash = ScanStore.hex(previous + "|" + text)
                try db.execute(sql: "UPDATE readings SET counts = ?, previousHash = ?, hash = ? WHERE seq = ?",
                               arguments: [counts, previous, hash, row["seq"] as Int64])
                previous = hash
            }
            try db.execute(sql: "UPDATE scans SET finishedAt = '2026-12-06T00:00:00.000Z'")
            let content = try #require(try ScanStore.sealContent(db, scanId: f.scanId))
            let hash = ScanStore.hex(content)
            let signature = try #require(f.store.signer).sign(hash)
            try db.execute(sql: "UPDATE seals SET content = ?, hash = ?, signature = ?", arguments: [content, hash, signature])
        }
        #expect(try f.store.verify().isValid, "consistent and re-signed: the robot alone cannot tell")
        let found = try problems(f.store, anchors: [.scan(id: f.scanId, sealHash: printed.hash)])
        #expect(found.contains { $0.contains("differs from the one held elsewhere") }, "\(found)")
    }

    @Test func anchorLinesAreParsedAndABadLineIsNamed() throws {
        let anchors = try ScanStore.Anchor.parse("# heads\nscan abc 0123\naudit 12 ffee\n\n")
        #expect(anchors == [.scan(id: "abc", sealHash: "0123"), .audit(seq: 12, hash: "ffee")])
        #expect(throws: (any Error).self) { try ScanStore.Anchor.parse("scan only-two") }
    }
}
