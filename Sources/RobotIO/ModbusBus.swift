import FirmwareProtocol
import Foundation

/// Which requests go first when several are waiting. Safety writes (e-stop, watchdog)
/// always overtake commands, and commands overtake status polls.
public enum BusPriority: Int, Sendable, CaseIterable, Comparable {
    case safety = 0
    case command = 1
    case poll = 2
    case background = 3

    public static func < (lhs: BusPriority, rhs: BusPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// How a bus behaves.
public struct BusConfiguration: Sendable {
    public var endpoint: BusEndpoint
    /// Extra attempts after a transient error (timeout, CRC, garbage). Bounded so a
    /// dead unit cannot hold the bus.
    public var maxRetries: Int
    /// Minimum time between reconnect attempts after the link went down.
    public var reconnectIntervalMilliseconds: Int
    /// The units on this bus; requests outside their maps are refused before sending.
    public var devices: [DeviceSpec]

    public init(endpoint: BusEndpoint, maxRetries: Int = 2, reconnectIntervalMilliseconds: Int = 500,
                devices: [DeviceSpec] = RegisterMap.devices) {
        self.endpoint = endpoint
        self.maxRetries = maxRetries
        self.reconnectIntervalMilliseconds = reconnectIntervalMilliseconds
        self.devices = devices
    }
}

/// The newest copy of a polled block.
public struct PolledBlock: Sendable {
    public let unitId: UInt8
    public let block: String
    /// The last registers read successfully (empty until the first success).
    public let registers: [UInt16]
    /// CLOCK_MONOTONIC time of the last successful read.
    public let sampledAtNanoseconds: UInt64
    /// Increments on every successful read.
    public let sequence: UInt64
    /// Failed polls since the last success: the control loop's lost-link counter.
    public let consecutiveFailures: Int
    public let lastError: BusError?

    public func decode<B: RegisterBlock>(_ type: B.Type) throws(ProtocolError) -> B {
        try B(registers: registers)
    }
}

/// One Modbus bus, run by its own thread.
///
/// The thread owns the libmodbus context: every C call happens there, never on
/// Swift's cooperative pool. Callers hand it requests (with a priority) and read the
/// latest polled state; both go through a lock held only for a copy.
public final class ModbusBus: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<[UInt16], BusError>) -> Void

    private struct Pending {
        let unit: UInt8
        let operation: BusOperation
        let completion: Completion
    }

    /// FIFO with O(1) pop; compacts itself when the consumed head grows large.
    private struct RequestQueue {
        private var items: [Pending] = []
        private var head = 0

        var isEmpty: Bool { head == items.count }

        mutating func push(_ item: Pending) {
            items.append(item)
        }

        mutating func pop() -> Pending? {
            guard head < items.count else { return nil }
            let item = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return item
        }
    }

    private struct Poll {
        let unit: UInt8
        let block: BlockSpec
        let periodNanoseconds: UInt64
        var nextDueNanoseconds: UInt64
    }

    private struct PollKey: Hashable {
        let unit: UInt8
        let table: RegisterTable
        let start: UInt16
    }

    public let configuration: BusConfiguration
    private let mapGuard: RegisterMapGuard

    // Guarded by `condition`: the request queues, the poll schedule and the run state.
    private let condition = NSCondition()
    private var queues: [RequestQueue] = Array(repeating: RequestQueue(), count: BusPriority.allCases.count)
    private var polls: [Poll] = []
    private var slots: [OutputSlot] = []
    private var stopping = false
    private var started = false
    private let exited = DispatchSemaphore(value: 0)

    // Guarded by `stateLock`: what readers see.
    private let stateLock = NSLock()
    private var latest: [PollKey: PolledBlock] = [:]
    private var statistics: [UInt8: DeviceStatistics] = [:]
    private var linkUp = false
    private var lastLinkError: BusError?

    public init(configuration: BusConfiguration) {
        self.configuration = configuration
        self.mapGuard = RegisterMapGuard(devices: configuration.devices)
    }

    deinit {
        stop()
    }

    // MARK: Life cycle

    /// Starts the bus thread. It connects, and reconnects after the link drops.
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in self.run() }
        thread.name = "modbus-bus \(configuration.endpoint)"
        thread.qualityOfService = .userInteractive
        thread.start()
    }

    /// Stops the thread, fails queued requests with `.busStopped`, and closes the link.
    public func stop() {
        condition.lock()
        guard started, !stopping else {
            condition.unlock()
            return
        }
        stopping = true
        condition.broadcast()
        condition.unlock()
        exited.wait()
    }

    // MARK: Requests

    /// Queues one transaction; `completion` runs on the bus thread, so keep it short.
    public func submit(unit: UInt8, _ operation: BusOperation, priority: BusPriority = .command,
                       completion: @escaping Completion) {
        if let kind = mapGuard.check(unit: unit, operation) {
            completion(.failure(error(kind, unit: unit, operation)))
            return
        }
        condition.lock()
        if stopping || !started {
            condition.unlock()
            completion(.failure(error(.busStopped, unit: unit, operation)))
            return
        }
        queues[priority.rawValue].push(Pending(unit: unit, operation: operation, completion: completion))
        condition.signal()
        condition.unlock()
    }

    /// Runs one transaction and returns the registers read (empty for a write).
    public func perform(unit: UInt8, _ operation: BusOperation, priority: BusPriority = .command) async throws(BusError) -> [UInt16] {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt16], BusError>, Never>) in
            submit(unit: unit, operation, priority: priority) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Reads and decodes a whole block.
    public func read<B: RegisterBlock>(_ type: B.Type, unit: UInt8, priority: BusPriority = .command) async throws(BusError) -> B {
        let spec = B.spec
        let operation: BusOperation = spec.table == .input
            ? .readInput(address: spec.start, count: spec.count)
            : .readHolding(address: spec.start, count: spec.count)
        let registers = try await perform(unit: unit, operation, priority: priority)
        do {
            return try B(registers: registers)
        } catch {
            throw self.error(.malformedReply(error.description), unit: unit, operation)
        }
    }

    /// Encodes (checking every field's range) and writes a whole block.
    public func write<B: RegisterBlock>(_ block: B, unit: UInt8, priority: BusPriority = .command) async throws(BusError) {
        let values: [UInt16]
        let operation: BusOperation
        do {
            values = try block.registers()
        } catch {
            throw self.error(.invalidValue(error), unit: unit, .writeMultiple(address: B.spec.start, values: []))
        }
        operation = .writeMultiple(address: B.spec.start, values: values)
        _ = try await perform(unit: unit, operation, priority: priority)
    }

    /// Reads a unit's identity block and checks its device type and protocol version.
    public func identify(_ device: DeviceSpec, required: ProtocolVersion = .current) async throws(BusError) -> IdentityBlock {
        let identity = try await read(IdentityBlock.self, unit: device.unitId)
        do {
            try identity.check(against: device, required: required)
        } catch {
            throw self.error(.incompatibleDevice(error), unit: device.unitId,
                             .readInput(address: IdentityBlock.spec.start, count: IdentityBlock.spec.count))
        }
        return identity
    }

    // MARK: Cyclic outputs

    /// A preallocated output for `count` holding registers at `address` of `unit`.
    public func makeOutputSlot(unit: UInt8, address: UInt16, capacity: Int, priority: BusPriority) -> OutputSlot {
        let slot = OutputSlot(unit: unit, address: address, capacity: max(1, capacity), priority: priority)
        condition.lock()
        slots.append(slot)
        slots.sort { $0.priority < $1.priority }
        condition.unlock()
        return slot
    }

    /// Fills `slot` (the closure writes the values and returns how many) and wakes the
    /// bus. Does not allocate; returns the post's sequence number.
    @discardableResult
    public func post(_ slot: OutputSlot, _ fill: (UnsafeMutableBufferPointer<UInt16>) -> Int) -> UInt64 {
        condition.lock()
        let sequence = slot.stage(fill, at: MonotonicClock.nanoseconds())
        condition.signal()
        condition.unlock()
        return sequence
    }

    public func status(of slot: OutputSlot) -> OutputSlotStatus {
        stateLock.lock()
        defer { stateLock.unlock() }
        return slot.statusSnapshot()
    }

    // MARK: Polling and state

    /// Polls `block` of `unit` every `periodMilliseconds` (0: back to back, whenever the
    /// bus has nothing more urgent). The newest copy is kept for `latest`.
    public func addPoll(unit: UInt8, block: BlockSpec, periodMilliseconds: Int) {
        condition.lock()
        polls.append(Poll(unit: unit, block: block, periodNanoseconds: UInt64(max(0, periodMilliseconds)) * 1_000_000,
                          nextDueNanoseconds: MonotonicClock.nanoseconds()))
        condition.signal()
        condition.unlock()
    }

    /// Polls every unit's status block at `periodMilliseconds`.
    public func pollStatusBlocks(periodMilliseconds: Int) {
        for device in configuration.devices {
            if let status = device.block("status") {
                addPoll(unit: device.unitId, block: status, periodMilliseconds: periodMilliseconds)
            }
        }
    }

    public func latest(unit: UInt8, block: BlockSpec) -> PolledBlock? {
        stateLock.lock()
        defer { stateLock.unlock() }
        return latest[PollKey(unit: unit, table: block.table, start: block.start)]
    }

    public var isLinkUp: Bool {
        stateLock.lock()
        defer { stateLock.unlock() }
        return linkUp
    }

    public func statisticsSnapshot() -> [DeviceStatisticsSnapshot] {
        stateLock.lock()
        defer { stateLock.unlock() }
        return statistics.keys.sorted().map { unit in
            statistics[unit]!.snapshot(unitId: unit, device: mapGuard.deviceName(unit: unit))
        }
    }

    // MARK: The bus thread

    private enum Work {
        case request(Pending)
        case poll(Poll)
        case output(OutputSlot, values: [UInt16], sequence: UInt64, postedAt: UInt64)
    }

    private func run() {
        let connection = ModbusConnection(endpoint: configuration.endpoint)
        var lastConnectAttempt: UInt64 = 0
        while let work = nextWork() {
            if !connection.isConnected {
                let now = MonotonicClock.nanoseconds()
                let interval = UInt64(configuration.reconnectIntervalMilliseconds) * 1_000_000
                if lastConnectAttempt == 0 || now &- lastConnectAttempt >= interval {
                    lastConnectAttempt = now
                    do {
                        try connection.connect()
                        setLink(up: true, error: nil)
                    } catch {
                        setLink(up: false, error: error)
                    }
                }
            }
            switch work {
            case .request(let pending):
                let result = execute(connection, unit: pending.unit, pending.operation, yieldToSafety: true)
                pending.completion(result)
            case let .output(slot, values, sequence, postedAt):
                send(connection, slot, values: values, sequence: sequence, postedAt: postedAt)
            case .poll(let poll):
                let operation: BusOperation = poll.block.table == .input
                    ? .readInput(address: poll.block.start, count: poll.block.count)
                    : .readHolding(address: poll.block.start, count: poll.block.count)
                // A poll is not retried: the next one is due within its period anyway, and
                // a retry to a silent unit would hold the line for another two response
                // times while the watchdog refresh waits.
                let result = execute(connection, unit: poll.unit, operation, retries: 0)
                publish(poll: poll, result: result)
            }
        }
        connection.close()
        condition.lock()
        var leftovers: [Pending] = []
        for priority in queues.indices {
            while let pending = queues[priority].pop() { leftovers.append(pending) }
        }
        condition.unlock()
        for pending in leftovers {
            pending.completion(.failure(error(.busStopped, unit: pending.unit, pending.operation)))
        }
        exited.signal()
    }

    /// Writes an output slot's image and records the outcome in the slot.
    private func send(_ connection: ModbusConnection, _ slot: OutputSlot, values: [UInt16], sequence: UInt64, postedAt: UInt64) {
        let operation: BusOperation = values.count == 1
            ? .writeSingle(address: slot.address, value: values[0])
            : .writeMultiple(address: slot.address, values: values)
        let result = execute(connection, unit: slot.unit, operation, yieldToSafety: slot.priority != .safety)
        let now = MonotonicClock.nanoseconds()
        stateLock.lock()
        switch result {
        case .success:
            slot.sent = sequence
            slot.sentAt = now
            slot.postToWireNanoseconds = now &- postedAt
            slot.consecutiveFailures = 0
        case .failure(let failure):
            slot.failedSequence = sequence
            slot.failures += 1
            slot.consecutiveFailures += 1
            slot.lastErrorKind = failure.kind
        }
        stateLock.unlock()
    }

    /// The watchdog refresh (a safety-priority slot) if one is waiting, taken off the queue.
    private func takeWaitingSafetySlot() -> Work? {
        condition.lock()
        defer { condition.unlock() }
        guard let slot = slots.first(where: { $0.priority == .safety && $0.dirty }) else { return nil }
        slot.dirty = false
        let values = Array(UnsafeBufferPointer(start: slot.storage, count: slot.count))
        return .output(slot, values: values, sequence: slot.postedSequence, postedAt: slot.postedAtNanoseconds)
    }

    /// Waits for the next request or due poll; `nil` when the bus is stopping.
    private func nextWork() -> Work? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopping { return nil }
            // Output slots go first within their priority: they carry the loop's set-points.
            for slot in slots where slot.dirty {
                let waitingAhead = (0..<slot.priority.rawValue).contains { !queues[$0].isEmpty }
                if waitingAhead { break }
                slot.dirty = false
                let values = Array(UnsafeBufferPointer(start: slot.storage, count: slot.count))
                return .output(slot, values: values, sequence: slot.postedSequence, postedAt: slot.postedAtNanoseconds)
            }
            for priority in 0..<queues.count where !queues[priority].isEmpty {
                // Polls run at `.poll` priority: a due poll overtakes background requests.
                if priority > BusPriority.poll.rawValue, let index = duePoll() { return claim(poll: index) }
                if let pending = queues[priority].pop() { return .request(pending) }
            }
            if let index = duePoll() { return claim(poll: index) }
            if let next = polls.map(\.nextDueNanoseconds).min() {
                let now = MonotonicClock.nanoseconds()
                let wait = next > now ? Double(next - now) / 1e9 : 0
                _ = condition.wait(until: Date(timeIntervalSinceNow: wait))
            } else {
                condition.wait()
            }
        }
    }

    private func duePoll() -> Int? {
        let now = MonotonicClock.nanoseconds()
        var best: Int?
        for i in polls.indices where polls[i].nextDueNanoseconds <= now {
            if best == nil || polls[i].nextDueNanoseconds < polls[best!].nextDueNanoseconds { best = i }
        }
        return best
    }

    private func claim(poll index: Int) -> Work {
        let now = MonotonicClock.nanoseconds()
        var next = polls[index].nextDueNanoseconds + polls[index].periodNanoseconds
        // Fell behind by more than a period: skip the missed slots instead of bursting.
        if next <= now { next = now + polls[index].periodNanoseconds }
        polls[index].nextDueNanoseconds = next
        return .poll(polls[index])
    }

    /// One transaction with up to `retries` more attempts after a transient error. With
    /// `yieldToSafety`, a waiting watchdog refresh goes out between attempts: a unit that
    /// stays silent then delays the refresh by one failed attempt (two response times),
    /// not by all of them, so one silent unit cannot starve the firmware's watchdog.
    private func execute(_ connection: ModbusConnection, unit: UInt8, _ operation: BusOperation, retries: Int? = nil,
                         yieldToSafety: Bool = false) -> Result<[UInt16], BusError> {
        guard connection.isConnected else {
            let kind: BusError.Kind = lastLinkErrorKind() ?? .linkDown("not connected")
            recordFailure(unit: unit, kind)
            return .failure(error(kind, unit: unit, operation))
        }
        var buffer = [UInt16](repeating: 0, count: operation.isWrite ? 0 : operation.registerCount)
        var attempt = 0
        while true {
            let t0 = MonotonicClock.nanoseconds()
            let rc = connection.execute(unit: unit, operation: operation, into: &buffer)
            if rc >= 0 {
                let elapsed = (MonotonicClock.nanoseconds() &- t0) / 1000
                stateLock.lock()
                statistics[unit, default: DeviceStatistics()].recordSuccess(microseconds: elapsed)
                stateLock.unlock()
                return .success(buffer)
            }
            let kind = connection.classify(errno: errno)
            // RTU has no transaction ID: a late reply left in the line would be taken as
            // the answer to the next request. Drop whatever is there after any error, and
            // after a timeout first wait one more response time, so that a reply still on
            // its way lands in the flush rather than in the next transaction.
            if case .timeout = kind, case .rtu = configuration.endpoint.transport {
                usleep(UInt32(configuration.endpoint.responseTimeoutMilliseconds) * 1000)
            }
            connection.flush()
            recordFailure(unit: unit, kind)
            let failure = error(kind, unit: unit, operation)
            if case .linkDown = kind {
                connection.close()
                setLink(up: false, error: failure)
                return .failure(failure)
            }
            guard failure.isTransient, attempt < (retries ?? configuration.maxRetries) else {
                return .failure(failure)
            }
            if yieldToSafety, case let .output(slot, values, sequence, postedAt)? = takeWaitingSafetySlot() {
                send(connection, slot, values: values, sequence: sequence, postedAt: postedAt)
            }
            attempt += 1
            stateLock.lock()
            statistics[unit, default: DeviceStatistics()].retries += 1
            stateLock.unlock()
        }
    }

    private func publish(poll: Poll, result: Result<[UInt16], BusError>) {
        let key = PollKey(unit: poll.unit, table: poll.block.table, start: poll.block.start)
        stateLock.lock()
        defer { stateLock.unlock() }
        let previous = latest[key]
        switch result {
        case .success(let registers):
            let now = MonotonicClock.nanoseconds()
            // The status block's age only: the optional blocks polled more slowly on purpose
            // (the range pair, the battery current) would read as a late status.
            if poll.block.name == "status", let sampled = previous?.sampledAtNanoseconds, sampled > 0, now > sampled {
                statistics[poll.unit, default: DeviceStatistics()].recordStatusAge(microseconds: (now - sampled) / 1000)
            }
            latest[key] = PolledBlock(unitId: poll.unit, block: poll.block.name, registers: registers,
                                      sampledAtNanoseconds: now,
                                      sequence: (previous?.sequence ?? 0) + 1, consecutiveFailures: 0, lastError: nil)
        case .failure(let failure):
            latest[key] = PolledBlock(unitId: poll.unit, block: poll.block.name, registers: previous?.registers ?? [],
                                      sampledAtNanoseconds: previous?.sampledAtNanoseconds ?? 0,
                                      sequence: previous?.sequence ?? 0,
                                      consecutiveFailures: (previous?.consecutiveFailures ?? 0) + 1, lastError: failure)
        }
    }

    private func recordFailure(unit: UInt8, _ kind: BusError.Kind) {
        stateLock.lock()
        statistics[unit, default: DeviceStatistics()].recordFailure(kind)
        stateLock.unlock()
    }

    private func setLink(up: Bool, error: BusError?) {
        stateLock.lock()
        linkUp = up
        lastLinkError = error
        stateLock.unlock()
    }

    private func lastLinkErrorKind() -> BusError.Kind? {
        stateLock.lock()
        defer { stateLock.unlock() }
        return lastLinkError?.kind
    }

    private func error(_ kind: BusError.Kind, unit: UInt8, _ operation: BusOperation) -> BusError {
        BusError(kind, unitId: unit, device: mapGuard.deviceName(unit: unit), operation: operation.description)
    }
}
