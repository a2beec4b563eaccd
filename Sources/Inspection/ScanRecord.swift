import Foundation

/// Where a scan's readings go as they are taken, and where a resumed scan finds
/// them. Every append must be durable when it returns: a crash after it loses nothing.
/// `ordinal` is the reading's place among its point's readings (0, 1, …): a store
/// refuses a second reading with the same ordinal, so nothing is recorded twice.
public protocol ScanRecord: Sendable {
    func backgroundReadings() async throws -> [DoseReading]
    func pointReadings() async throws -> [Int: [DoseReading]]
    func remeasureReadings() async throws -> [Int: [DoseReading]]
    func appendBackground(_ reading: DoseReading, ordinal: Int) async throws
    func appendPoint(_ index: Int, _ reading: DoseReading, ordinal: Int, remeasure: Bool) async throws
}

/// A record kept in memory (tests and dry runs). Not crash-safe.
public final class InMemoryScanRecord: ScanRecord, @unchecked Sendable {
    private let lock = NSLock()
    private var background: [DoseReading] = []
    private var points: [Int: [DoseReading]] = [:]
    private var remeasures: [Int: [DoseReading]] = [:]

    public init() {}

    public func backgroundReadings() -> [DoseReading] { lock.withLock { background } }
    public func pointReadings() -> [Int: [DoseReading]] { lock.withLock { points } }
    public func remeasureReadings() -> [Int: [DoseReading]] { lock.withLock { remeasures } }
    public func appendBackground(_ reading: DoseReading, ordinal: Int) { lock.withLock { background.append(reading) } }
    public func appendPoint(_ index: Int, _ reading: DoseReading, ordinal: Int, remeasure: Bool) {
        lock.withLock {
            if remeasure { remeasures[index, default: []].append(reading) } else { points[index, default: []].append(reading) }
        }
    }
}

/// How the executor waits (settling). Tests against a time-scaled simulator pass a
/// scaled one, so the procedure's seconds are the simulator's seconds.
public struct Sleeper: Sendable {
    public let timeScale: Double

    public init(timeScale: Double = 1) {
        self.timeScale = timeScale
    }

    public func sleep(seconds: Double) async {
        guard seconds > 0 else { return }
        try? await Task.sleep(nanoseconds: UInt64(seconds / timeScale * 1e9))
    }
}
