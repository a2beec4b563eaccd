import CProcessMemory
import Foundation

/// The process's memory several ways: resident set (what the OS charges) split into
/// anonymous memory (heap, stacks) and file pages (code, libraries, mapped files); the C
/// heap in use (allocated and not freed); and SQLite's share of that heap. The loop locks
/// all memory (mlockall, current and future), so each thread's whole 8 MiB stack is
/// resident: the resident set moves in 8 MiB steps as Dispatch adds or retires worker
/// threads, which is why the thread count is shown too.
public struct MemoryUse: CustomStringConvertible, Sendable {
    public var threads: Int
    public var residentBytes: Int
    public var anonymousBytes: Int
    public var fileBytes: Int
    public var heapBytes: Int
    public var sqliteBytes: Int

    public static func now() -> MemoryUse {
        var anonymous = 0, file = 0, threads = 0
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard fields.count >= 2, let kilobytes = Int(fields[1]) else { continue }
                if fields[0] == "RssAnon:" { anonymous = kilobytes * 1024 }
                if fields[0] == "RssFile:" { file = kilobytes * 1024 }
                if fields[0] == "Threads:" { threads = kilobytes }
            }
        }
        return MemoryUse(threads: threads, residentBytes: residentBytes(), anonymousBytes: anonymous, fileBytes: file,
                         heapBytes: Int(process_memory_heap_in_use()), sqliteBytes: Int(process_memory_sqlite_in_use()))
    }

    public var description: String {
        String(format: "RSS %.1f MiB (anonymous %.1f, file %.1f; heap in use %.1f, SQLite %.1f; %d threads)", Self.mebibytes(residentBytes),
               Self.mebibytes(anonymousBytes), Self.mebibytes(fileBytes), Self.mebibytes(heapBytes), Self.mebibytes(sqliteBytes), threads)
    }

    public static func mebibytes(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }

    /// Memory at each quarter of the run (after the first scan, which sets up caches,
    /// pools and the simulator's tables), and the growth of each half: a leak grows in
    /// both halves alike; caches filling up grow in the first and level off in the second.
    public static func report(_ samples: [(at: Date, use: MemoryUse)], say: (String) -> Void) {
        guard let first = samples.first, let last = samples.last, samples.count >= 3 else {
            say("memory: too few scans to judge (\(samples.count) samples)")
            return
        }
        let span = last.at.timeIntervalSince(first.at)
        func at(_ fraction: Double) -> MemoryUse {
            let when = first.at.addingTimeInterval(span * fraction)
            return samples.min { abs($0.at.timeIntervalSince(when)) < abs($1.at.timeIntervalSince(when)) }?.use ?? last.use
        }
        say(String(format: "memory after the first scan and at each quarter of the following %.0f min:", span / 60))
        for (label, fraction) in [("first scan", 0.0), ("25 %", 0.25), ("50 %", 0.5), ("75 %", 0.75), ("end", 1.0)] {
            say("  \(label.padding(toLength: 10, withPad: " ", startingAt: 0)) \(at(fraction))")
        }
        let middle = at(0.5)
        func growth(_ a: MemoryUse, _ b: MemoryUse) -> String {
            String(format: "RSS %+.1f MiB (anonymous %+.1f, file %+.1f), heap in use %+.1f MiB (SQLite %+.1f, the rest %+.1f), threads %d → %d",
                   mebibytes(b.residentBytes - a.residentBytes), mebibytes(b.anonymousBytes - a.anonymousBytes),
                   mebibytes(b.fileBytes - a.fileBytes), mebibytes(b.heapBytes - a.heapBytes), mebibytes(b.sqliteBytes - a.sqliteBytes),
                   mebibytes((b.heapBytes - b.sqliteBytes) - (a.heapBytes - a.sqliteBytes)), a.threads, b.threads)
        }
        say("memory growth, first half: \(growth(first.use, middle))")
        say("memory growth, second half: \(growth(middle, last.use))")
        let peak = samples.map(\.use.residentBytes).max() ?? last.use.residentBytes
        say(String(format: "memory: %.1f MiB resident after the first scan, %.1f MiB at the end, peak %.1f MiB",
                   mebibytes(first.use.residentBytes), mebibytes(last.use.residentBytes), mebibytes(peak)))
    }

    /// The resident set in bytes (from /proc/self/statm).
    public static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
