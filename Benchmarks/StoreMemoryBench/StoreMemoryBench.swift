import BenchmarkSupport
import Foundation
import Inspection
import InspectionStore
import ProcessMemory

/// Memory of a store that keeps growing, as robotd's does over months: it writes scans of
/// 36 readings (a 20 ft demo scan's worth), and after every batch reads a sample of them
/// back from 8 tasks at once (verdicts, heat maps and resumes do) and verifies the whole
/// store, then prints the file size and the process's memory. SQLite's page caches (2 MiB
/// per connection by default; the pool has a writer and up to 5 readers) should level off
/// while the file keeps growing, and the heap outside SQLite should not grow at all.
///
///     swift build -c release --product StoreMemoryBench
///     .build/release/StoreMemoryBench [--scans 1200] [--batch 100]
///
/// Exits 1 if SQLite's memory in the last third of the run grew by more than 1 MiB or
/// the heap outside it by more than 1 MiB.
@main
struct StoreMemoryBench {
    static func main() async {
        do {
            try await run()
        } catch {
            print("StoreMemoryBench: \(error)")
            exit(2)
        }
    }

    static func run() async throws {
        let arguments = BenchmarkArguments()
        let scans = max(1, arguments.int("--scans", 1200))
        let batch = max(1, arguments.int("--batch", 100))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-memory-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("scans.sqlite").path
        let store = try ScanStore(path: path)
        let plan = ScanPlan(container: ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .twentyFoot, xMetres: 0, yMetres: 0),
                            profile: ProcedureProfile())
        let instrument = InstrumentRecord(serialNumber: "GD-1", sensitivityCountsPerSecondPerMicrosievertPerHour: 300, calibrationFactor: 1.02,
                                          calibrationDate: 20260301, calibrationExpiry: 20270301)
        var random = SystemRandomNumberGenerator()
        var ids: [String] = []
        var samples: [(scans: Int, fileBytes: Int, use: MemoryUse)] = []
        print("StoreMemoryBench: \(scans) scans of 36 readings, sampled every \(batch); \(ProcessInfo.processInfo.processorCount) CPUs")
        print("scans   file MiB   memory")
        while ids.count < scans {
            for _ in 0..<min(batch, scans - ids.count) {
                let id = try store.createScan(plan: plan, instrument: instrument, robotId: "bench", officer: "bench")
                let record = store.record(for: id)
                for ordinal in 0..<4 { try await record.appendBackground(reading(0.1, &random), ordinal: ordinal) }
                for point in 0..<16 {
                    for ordinal in 0..<2 { try await record.appendPoint(point, reading(0.1, &random), ordinal: ordinal, remeasure: false) }
                }
                try store.finish(scanId: id, verdict: nil, status: .aborted, actor: "bench")
                ids.append(id)
            }
            // Read back as the server does: eight at once, old and new scans alike.
            let sample = (0..<64).map { _ in ids[Int.random(in: 0..<ids.count, using: &random)] }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<8 {
                    group.addTask {
                        for id in sample[(lane * 8)..<(lane * 8 + 8)] {
                            _ = try store.readingSets(scanId: id)
                            _ = try store.plan(of: id)
                        }
                    }
                }
                try await group.waitForAll()
            }
            _ = try store.scans()
            let verification = try store.verify()
            guard verification.isValid else { throw StoreMemoryBenchFailure(description: "the store did not verify: \(verification)") }
            let fileBytes = ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
                + ((try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0)
            let use = MemoryUse.now()
            samples.append((ids.count, fileBytes, use))
            print(String(format: "%5d   %8.1f   %@", ids.count, MemoryUse.mebibytes(fileBytes), use.description))
        }
        guard samples.count >= 3, let last = samples.last else { return }
        let third = samples[samples.count - 1 - (samples.count - 1) / 3]
        let sqliteGrowth = MemoryUse.mebibytes(last.use.sqliteBytes - third.use.sqliteBytes)
        let restGrowth = MemoryUse.mebibytes((last.use.heapBytes - last.use.sqliteBytes) - (third.use.heapBytes - third.use.sqliteBytes))
        let fileGrowth = MemoryUse.mebibytes(last.fileBytes - third.fileBytes)
        print(String(format: "last third (%d → %d scans): file %+.1f MiB, SQLite %+.2f MiB, heap outside SQLite %+.2f MiB, RSS %+.1f MiB",
                     third.scans, last.scans, fileGrowth, sqliteGrowth, restGrowth,
                     MemoryUse.mebibytes(last.use.residentBytes - third.use.residentBytes)))
        let flat = sqliteGrowth <= 1 && restGrowth <= 1
        print(flat ? "memory: flat while the store grows" : "memory: STILL GROWING")
        exit(flat ? 0 : 1)
    }

    static func reading(_ dose: Double, _ random: inout SystemRandomNumberGenerator) -> DoseReading {
        let counts = UInt32(Double.random(in: 25...40, using: &random))
        return DoseReading(counts: counts, seconds: 1, countRatePerSecond: Double(counts), rawDoseRate: Double(counts) / 300,
                           grossDoseRate: Double(counts) / 300 * 1.02, instrumentDoseRate: dose, overload: false, takenAt: Date())
    }
}

struct StoreMemoryBenchFailure: Error, CustomStringConvertible {
    let description: String
}
