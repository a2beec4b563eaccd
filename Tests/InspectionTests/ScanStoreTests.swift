import Foundation
import GRDB
import Inspection
import InspectionStore
import RobotTesting
import Testing

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ScanStoreTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("scanstore-\(UUID().uuidString).sqlite").path
    }

    func plan() throws -> ScanPlan {
        ScanPlan(container: ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .twentyFoot, xMetres: 0, yMetres: 0),
                 profile: ProcedureProfile())
    }

    let instrument = InstrumentRecord(serialNumber: "GD-1", sensitivityCountsPerSecondPerMicrosievertPerHour: 300, calibrationFactor: 1.02,
                                      calibrationDate: 20260301, calibrationExpiry: 20270301)

    func reading(_ dose: Double) -> DoseReading {
        DoseReading(counts: UInt32(dose * 300), seconds: 1, countRatePerSecond: dose * 300, rawDoseRate: dose / 1.02, grossDoseRate: dose,
                    instrumentDoseRate: dose, overload: false, takenAt: Date(timeIntervalSince1970: 1_800_000_000.125))
    }

    @Test func readingsSurviveReopeningAndTheChainVerifies() async throws {
        let path = temporaryPath()
        let scanId: String
        do {
            let store = try ScanStore(path: path)
            scanId = try store.createScan(plan: try plan(), instrument: instrument, robotId: "RIR-01", officer: "officer 7")
            let record = store.record(for: scanId)
            try await record.appendBackground(reading(0.1), ordinal: 0)
            try await record.appendPoint(0, reading(0.11), ordinal: 0, remeasure: false)
            try await record.appendPoint(0, reading(0.12), ordinal: 1, remeasure: false)
            try await record.appendPoint(1, reading(0.6), ordinal: 0, remeasure: true)
        }
        let reopened = try ScanStore(path: path)
        #expect(try reopened.unfinishedScan(container: "CSQU3054383") == scanId)
        let record = reopened.record(for: scanId)
        let accepted = try await record.accepted(readingsPerPoint: 3)
        let background = accepted.background
        let points = accepted.points
        let remeasures = accepted.remeasures
        #expect(background.count == 1)
        #expect(points[0]?.map(\.grossDoseRate) == [0.11, 0.12])
        #expect(remeasures[1]?.count == 1)
        let (storedPlan, storedInstrument) = try reopened.plan(of: scanId)
        #expect(storedPlan == (try plan()))
        #expect(storedInstrument == instrument)
        let report = try reopened.verify()
        #expect(report.isValid, "\(report)")
        #expect(report.readings == 4)
        #expect(report.auditEntries == 1)
    }

    @Test func aDuplicateReadingIsRefused() async throws {
        let store = try ScanStore(path: temporaryPath())
        let scanId = try store.createScan(plan: try plan(), instrument: instrument, robotId: "RIR-01", officer: "o")
        let record = store.record(for: scanId)
        try await record.appendPoint(3, reading(0.1), ordinal: 0, remeasure: false)
        await #expect(throws: (any Error).self) { try await record.appendPoint(3, reading(0.1), ordinal: 0, remeasure: false) }
        #expect(try await record.accepted(readingsPerPoint: 1).points[3]?.count == 1)
    }

    @Test func tamperingIsDetectedAndDeletesAreRefused() async throws {
        let path = temporaryPath()
        let store = try ScanStore(path: path)
        let scanId = try store.createScan(plan: try plan(), instrument: instrument, robotId: "RIR-01", officer: "o")
        let record = store.record(for: scanId)
        for i in 0..<3 { try await record.appendPoint(i, reading(0.1), ordinal: 0, remeasure: false) }
        // The triggers refuse edits through SQL...
        let queue = try DatabaseQueue(path: path)
        #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "UPDATE readings SET grossDose = 0.01 WHERE seq = 2") } }
        #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "DELETE FROM readings WHERE seq = 2") } }
        // ...and someone who drops them is caught by the chain.
        try await queue.write { db in
            try db.execute(sql: "DROP TRIGGER readings_append_only_update")
            try db.execute(sql: "UPDATE readings SET grossDose = 0.01 WHERE seq = 2")
        }
        let report = try store.verify()
        #expect(!report.isValid)
        #expect(report.problems.contains { $0.contains("reading 2: contents do not match their hash") })
    }

    /// A store holds months of scans: they are listed a page at a time, newest page first.
    @Test func scansAreListedAPageAtATimeAndUnfinishedOnesAreFoundBeyondThePage() async throws {
        let store = try ScanStore(path: temporaryPath())
        var ids: [String] = []
        for i in 0..<7 {
            let id = try store.createScan(plan: try plan(), instrument: instrument, robotId: "RIR-01", officer: "o", id: "scan-\(i)")
            if i != 1 { try store.finish(scanId: id, verdict: nil, status: .aborted, actor: "o") }
            ids.append(id)
        }
        #expect(try store.scans(limit: 3).map(\.id) == ["scan-4", "scan-5", "scan-6"])
        #expect(try store.scans(limit: 3, before: "scan-4").map(\.id) == ["scan-1", "scan-2", "scan-3"])
        #expect(try store.scans(limit: 3, before: "scan-1").map(\.id) == ["scan-0"])
        #expect(try store.scans(limit: 100).map(\.id) == ids)
        #expect(try store.scanSummary(id: "scan-5")?.status == .aborted)
        #expect(try store.scanSummary(id: "scan-9") == nil)
        // The unfinished scan is found though it is older than any short page.
        #expect(try store.unfinishedScans().map(\.id) == ["scan-1"])
    }

    /// Verification streams the store and lists at most a bounded number of problems.
    @Test func verificationCountsEveryProblemAndListsABoundedNumber() async throws {
        let path = temporaryPath()
        let store = try ScanStore(path: path)
        let scanId = try store.createScan(plan: try plan(), instrument: instrument, robotId: "RIR-01", officer: "o")
        let record = store.record(for: scanId)
        let readings = ScanStore.maximumProblemsListed + 20
        for i in 0..<readings { try await record.appendPoint(i, reading(0.1), ordinal: 0, remeasure: false) }
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "DROP TRIGGER readings_append_only_update")
            try db.execute(sql: "UPDATE readings SET grossDose = 0.01")
        }
        let report = try store.verify()
        #expect(!report.isValid)
        #expect(report.readings == readings)
        #expect(report.problemCount == readings)
        #expect(report.problems.count == ScanStore.maximumProblemsListed)
    }

    @Test func aFinishedScansReportCarriesItsFirmwareVersionsAndChainHash() async throws {
        let store = try ScanStore(path: temporaryPath())
        let firmware = ["chassis": "1.4 (protocol 1.0)", "lift": "1.2 (protocol 1.0)"]
        let scanId = try store.createScan(plan: try plan(), instrument: instrument, robotId: "RIR-01", officer: "o", firmware: firmware)
        #expect(throws: (any Error).self) { try store.report(scanId: scanId) }  // no verdict yet
        let record = store.record(for: scanId)
        try await record.appendBackground(reading(0.1), ordinal: 0)
        try await record.appendPoint(0, reading(0.1), ordinal: 0, remeasure: false)
        let verdict = Verdict(outcome: .pass, backgroundMean: 0.1, backgroundDeviation: 0, backgroundReadings: 1, limit: 0.25,
                              pointAlpha: 0.05, k: 1.645, decisionThreshold: 0.05, detectionLimit: 0.1, maxNet: 0,
                              maxNetPointIndex: nil, points: [], faces: [], flags: [])
        try store.finish(scanId: scanId, verdict: verdict, status: .done, actor: "o")
        let report = try store.report(scanId: scanId)
        #expect(report.firmware == firmware)
        #expect(report.chainHash.count == 64)
        #expect(report.html().contains("chassis 1.4 (protocol 1.0)"))
        #expect(report.seal?.hash.count == 64)
        #expect(try store.verify(recomputeVerdicts: false).isValid)
        // The verdict written here by hand is not what its two readings give, and verify says so.
        #expect(try store.verify().problems.contains { $0.contains("readings") })
    }
}
