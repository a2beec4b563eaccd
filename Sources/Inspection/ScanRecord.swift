import Foundation
import RobotIO

/// Where a scan's readings go as they are taken, and where a resumed scan finds
/// them. Every append must be durable when it returns: a crash after it loses nothing.
/// `ordinal` is the reading's place among its point's readings (0, 1, …, unique across
/// its sets): a store refuses a second reading with the same ordinal, so nothing is
/// recorded twice. `set` groups readings taken together (see `RecordedReading`).
public protocol ScanRecord: Sendable {
    /// Every reading so far, in the order taken.
    func recordedReadings() async throws -> [RecordedReading]
    func append(_ reading: DoseReading, kind: RecordedReading.Kind, pointIndex: Int, ordinal: Int, set: Int) async throws
}

extension ScanRecord {
    public func appendBackground(_ reading: DoseReading, ordinal: Int, set: Int = 0) async throws {
        try await append(reading, kind: .background, pointIndex: -1, ordinal: ordinal, set: set)
    }

    public func appendPoint(_ index: Int, _ reading: DoseReading, ordinal: Int, remeasure: Bool, set: Int = 0) async throws {
        try await append(reading, kind: remeasure ? .remeasure : .point, pointIndex: index, ordinal: ordinal, set: set)
    }

    /// The readings that count (one set per point, the newest survey round).
    public func accepted(readingsPerPoint: Int) async throws -> AcceptedReadings {
        AcceptedReadings(try await recordedReadings(), readingsPerPoint: readingsPerPoint)
    }
}

/// A record kept in memory (tests and dry runs). Not crash-safe.
public final class InMemoryScanRecord: ScanRecord, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [RecordedReading] = []

    public init() {}

    public func recordedReadings() -> [RecordedReading] { lock.withLock { recorded } }

    public func append(_ reading: DoseReading, kind: RecordedReading.Kind, pointIndex: Int, ordinal: Int, set: Int) {
        lock.withLock { recorded.append(RecordedReading(kind: kind, pointIndex: pointIndex, ordinal: ordinal, set: set, reading: reading)) }
    }

    /// Every point reading kept, by point (all sets: what a test wants to count).
    public func pointReadings() -> [Int: [DoseReading]] {
        lock.withLock { Dictionary(grouping: recorded.filter { $0.kind == .point }, by: \.pointIndex).mapValues { $0.map(\.reading) } }
    }

    public func backgroundReadings() -> [DoseReading] { lock.withLock { recorded.filter { $0.kind == .background }.map(\.reading) } }
}

/// How the executor waits (settling, polling for a reset). Tests against a time-scaled
/// simulator pass a scaled one, so the procedure's seconds are the simulator's seconds;
/// virtual-time tests pass the robot's `VirtualClock`, so a wait is virtual time too.
public struct Sleeper: Sendable {
    public let timeScale: Double
    private let virtualClock: VirtualClock?

    public init(timeScale: Double = 1) {
        self.timeScale = timeScale
        self.virtualClock = nil
    }

    public init(virtualClock: VirtualClock) {
        self.timeScale = 1
        self.virtualClock = virtualClock
    }

    /// The time to stamp a reading with: the calendar, or the virtual clock's.
    public func now() -> Date {
        virtualClock?.date ?? Date()
    }

    public func sleep(seconds: Double) async {
        guard seconds > 0 else { return }
        if let virtualClock {
            await virtualClock.sleep(nanoseconds: UInt64(seconds * 1e9))
        } else {
            try? await Task.sleep(nanoseconds: UInt64(seconds / timeScale * 1e9))
        }
    }
}
