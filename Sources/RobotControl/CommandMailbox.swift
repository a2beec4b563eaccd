import RobotIO
import Foundation

/// A bounded queue of commands from the command side to the loop, and a table of
/// their feedback going back. Both are fixed-size, so the loop never allocates here;
/// the lock is held only to copy an entry.
final class CommandMailbox: @unchecked Sendable {
    struct Entry {
        var id: UInt64
        var command: RobotCommand
        var expiresAtNanoseconds: UInt64
        /// Software e-stop requests made before this command was posted: a release posted
        /// before a newer e-stop must not release it.
        var estopsBefore: UInt64 = 0
    }

    private let lock = NSLock()
    private var ring: [Entry?]
    private var head = 0
    private var count = 0
    private var nextId: UInt64 = 1
    private var feedback: [CommandFeedback?]

    private let clock: any LoopClock

    init(clock: any LoopClock = SystemClock(), capacity: Int = 64, feedbackCapacity: Int = 1024) {
        self.clock = clock
        ring = Array(repeating: nil, count: capacity)
        feedback = Array(repeating: nil, count: feedbackCapacity)
    }

    /// Queues a command; its feedback starts as accepted (or blocked if the box is full).
    func post(_ command: RobotCommand, expiresAtNanoseconds: UInt64, estopsBefore: UInt64 = 0) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        let id = nextId
        nextId += 1
        let now = clock.nanoseconds()
        guard count < ring.count else {
            feedback[Int(id % UInt64(feedback.count))] = CommandFeedback(
                id: id, command: command, state: .blocked, problem: .mailboxFull, reading: nil, updatedAtNanoseconds: now)
            return id
        }
        ring[(head + count) % ring.count] = Entry(id: id, command: command, expiresAtNanoseconds: expiresAtNanoseconds, estopsBefore: estopsBefore)
        count += 1
        feedback[Int(id % UInt64(feedback.count))] = CommandFeedback(
            id: id, command: command, state: .accepted, problem: nil, reading: nil, updatedAtNanoseconds: now)
        return id
    }

    /// Feedback for a command that does not go through the queue (the software e-stop,
    /// which has its own flag): it is never refused for capacity.
    func recordUnqueued(_ command: RobotCommand) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        let id = nextId
        nextId += 1
        feedback[Int(id % UInt64(feedback.count))] = CommandFeedback(
            id: id, command: command, state: .accepted, problem: nil, reading: nil, updatedAtNanoseconds: clock.nanoseconds())
        return id
    }

    /// Marks every pending software e-stop done (loop side, on the tick that latched it).
    /// A scan of the fixed table, only on that tick: no allocation.
    func completeUnqueuedEstops() {
        lock.lock()
        defer { lock.unlock() }
        let now = clock.nanoseconds()
        for slot in feedback.indices {
            guard var entry = feedback[slot], entry.command == .estop, entry.state == .accepted else { continue }
            entry.state = .done
            entry.updatedAtNanoseconds = now
            feedback[slot] = entry
        }
    }

    /// The oldest queued command (loop side).
    /// True while a command waits to be taken.
    var hasQueued: Bool {
        lock.lock()
        defer { lock.unlock() }
        return count > 0
    }

    func take() -> Entry? {
        lock.lock()
        defer { lock.unlock() }
        guard count > 0 else { return nil }
        let entry = ring[head]
        ring[head] = nil
        head = (head + 1) % ring.count
        count -= 1
        return entry
    }

    /// Records a state change (loop side). Final states are never changed again.
    func update(_ id: UInt64, _ state: CommandState, problem: CommandProblem? = nil, reading: Reading? = nil) {
        lock.lock()
        defer { lock.unlock() }
        let slot = Int(id % UInt64(feedback.count))
        guard var entry = feedback[slot], entry.id == id, !entry.state.isFinal else { return }
        entry.state = state
        entry.problem = problem
        if let reading { entry.reading = reading }
        entry.updatedAtNanoseconds = clock.nanoseconds()
        feedback[slot] = entry
    }

    func feedback(for id: UInt64) -> CommandFeedback? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = feedback[Int(id % UInt64(feedback.count))], entry.id == id else { return nil }
        return entry
    }
}
