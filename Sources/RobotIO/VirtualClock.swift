import Foundation
import Synchronization

/// A clock that moves only when told to: the time base of virtual-time tests.
///
/// Whoever steps the world (`RobotTesting.VirtualRobot`) advances it one loop period at
/// a time. Code that waits for time to pass (a settle, a poll for a reset) calls
/// `sleep(nanoseconds:)`, which parks until the clock has moved that far; while anyone
/// is parked, `hasSleepers` tells the stepper that time is wanted.
public final class VirtualClock: LoopClock, @unchecked Sendable {
    private let now: Atomic<UInt64>
    private let lock = NSLock()
    private var sleepers: [(wakeAt: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    /// Set by `wakeAll()`: nobody steps the clock any more, so nobody may wait on it.
    private var closed = false

    /// The calendar time at which the clock started: fixed by default, so two runs
    /// stamp their readings alike and a verdict that weighs readings by time is the same.
    public let epoch: Date
    private let startNanoseconds: UInt64

    /// Starts at `startNanoseconds` (not 0: "sampled at 0" means "never" to some readers).
    public init(startNanoseconds: UInt64 = 1_000_000_000, epoch: Date = Date(timeIntervalSince1970: 1_796_000_000)) {
        now = Atomic(startNanoseconds)
        self.startNanoseconds = startNanoseconds
        self.epoch = epoch
    }

    /// The calendar time now: the epoch plus the virtual time elapsed.
    public var date: Date { epoch.addingTimeInterval(Double(nanoseconds() &- startNanoseconds) / 1e9) }

    public func nanoseconds() -> UInt64 { now.load(ordering: .acquiring) }

    public var seconds: Double { Double(nanoseconds()) / 1e9 }

    /// Moves time forward. Sleepers whose time has come are woken by `wakeDueSleepers()`,
    /// which the stepper calls once the tick at this time is done: a task woken earlier
    /// could post its next command before or after that tick, and two runs would differ.
    public func advance(byNanoseconds step: UInt64) {
        now.add(step, ordering: .acquiringAndReleasing)
    }

    /// Wakes every sleeper whose time has come.
    public func wakeDueSleepers() {
        let t = nanoseconds()
        lock.lock()
        guard sleepers.contains(where: { $0.wakeAt <= t }) else {
            lock.unlock()
            return
        }
        let due = sleepers.filter { $0.wakeAt <= t }
        sleepers.removeAll { $0.wakeAt <= t }
        lock.unlock()
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// True while some task waits for virtual time to pass.
    public var hasSleepers: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !sleepers.isEmpty
    }

    /// Wakes every sleeper now (the world is being torn down; nobody is left to step it).
    public func wakeAll() {
        lock.lock()
        closed = true
        let all = sleepers
        sleepers.removeAll()
        lock.unlock()
        for sleeper in all { sleeper.continuation.resume() }
    }

    /// Suspends until the clock has advanced by `nanoseconds`.
    public func sleep(nanoseconds: UInt64) async {
        let wakeAt = self.nanoseconds() &+ nanoseconds
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if nanoseconds == 0 || closed {
                lock.unlock()
                continuation.resume()
                return
            }
            sleepers.append((wakeAt, continuation))
            lock.unlock()
        }
    }
}
