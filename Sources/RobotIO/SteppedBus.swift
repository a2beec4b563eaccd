import FirmwareProtocol
import Foundation

/// A unit's registers, reached without a wire: the simulator's firmware model, or a
/// test double. Reads and writes behave as the Modbus function codes do.
public protocol RegisterDevice: AnyObject, Sendable {
    func read(unit: UInt8, table: RegisterTable, start: Int, count: Int) -> Result<[UInt16], ModbusException>
    func write(unit: UInt8, start: Int, values: [UInt16]) -> ModbusException?
}

/// An in-memory `ControlBus` for virtual time: no thread, no wire, no real clock.
///
/// `pump()` does what the bus thread does between two loop ticks: it writes every posted
/// output slot to the device, then runs every poll that is due on the virtual clock. The
/// register map guard and the slot bookkeeping are the same as `ModbusBus`'s, so the loop
/// sees the same sequences, failures and lost-link counters. `setLink(up:)` cuts the
/// link: polls and writes then fail as a timeout would, and the loop's supervisor acts.
public final class SteppedBus: ControlBus, @unchecked Sendable {
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

    private let device: any RegisterDevice
    private let clock: any LoopClock
    private let mapGuard: RegisterMapGuard
    private let lock = NSLock()
    private var polls: [Poll] = []
    private var slots: [OutputSlot] = []
    private var latestBlocks: [PollKey: PolledBlock] = [:]
    private var statistics: [UInt8: DeviceStatistics] = [:]
    private var linkUp = true
    private var running = false
    /// Fault injection: cyclic writes to lose, and transactions a unit leaves unanswered.
    private var writesToLose: [UInt8: Int] = [:]
    private var silentTransactions: [UInt8: Int] = [:]
    private var pollsToLose: [UInt8: Int] = [:]

    public init(device: any RegisterDevice, clock: any LoopClock, devices: [DeviceSpec] = RegisterMap.devices) {
        self.device = device
        self.clock = clock
        self.mapGuard = RegisterMapGuard(devices: devices)
    }

    public var endpointDescription: String { "in-memory simulator (virtual time)" }

    public var isLinkUp: Bool {
        lock.lock()
        defer { lock.unlock() }
        return linkUp
    }

    /// Cuts (or restores) the link: while down, every transaction fails with a timeout.
    public func setLink(up: Bool) {
        lock.lock()
        linkUp = up
        lock.unlock()
    }

    /// Loses the next `count` cyclic writes (posted slots) to `unit`, as a write that fails
    /// after its retries does on a real line; polls still go through.
    public func loseWrites(unit: UInt8, count: Int) {
        lock.lock()
        writesToLose[unit, default: 0] += count
        lock.unlock()
    }

    /// Loses the next `count` status polls of `unit`; its writes still go through.
    public func losePolls(unit: UInt8, count: Int) {
        lock.lock()
        pollsToLose[unit, default: 0] += count
        lock.unlock()
    }

    /// Leaves the next `count` transactions (polls and writes) to `unit` unanswered.
    public func silence(unit: UInt8, transactions count: Int) {
        lock.lock()
        silentTransactions[unit, default: 0] += count
        lock.unlock()
    }

    /// Injected faults still to come, by unit.
    public var pendingFaults: (lostWrites: [UInt8: Int], silentTransactions: [UInt8: Int]) {
        lock.lock()
        defer { lock.unlock() }
        return (writesToLose.filter { $0.value > 0 }, silentTransactions.filter { $0.value > 0 })
    }

    public func start() {
        lock.lock()
        running = true
        lock.unlock()
    }

    public func stop() {
        lock.lock()
        running = false
        lock.unlock()
    }

    // MARK: Requests (run at once, on the caller's thread: there is no wire to wait for)

    private func perform(unit: UInt8, _ operation: BusOperation) throws(BusError) -> [UInt16] {
        if let kind = mapGuard.check(unit: unit, operation) {
            throw BusError(kind, unitId: unit, device: mapGuard.deviceName(unit: unit), operation: operation.description)
        }
        lock.lock()
        defer { lock.unlock() }
        let result = transact(unit: unit, operation)
        switch result {
        case .success(let registers): return registers
        case .failure(let error): throw error
        }
    }

    /// One transaction against the device; the caller holds `lock`.
    private func transact(unit: UInt8, _ operation: BusOperation) -> Result<[UInt16], BusError> {
        func failure(_ kind: BusError.Kind) -> Result<[UInt16], BusError> {
            statistics[unit, default: DeviceStatistics()].recordFailure(kind)
            return .failure(BusError(kind, unitId: unit, device: mapGuard.deviceName(unit: unit), operation: operation.description))
        }
        guard running else { return failure(.busStopped) }
        guard linkUp else { return failure(.timeout(milliseconds: 100)) }
        if let silent = silentTransactions[unit], silent > 0 {
            silentTransactions[unit] = silent - 1
            return failure(.timeout(milliseconds: 100))
        }
        let result: Result<[UInt16], ModbusException>
        switch operation {
        case .readInput(let address, let count):
            result = device.read(unit: unit, table: .input, start: Int(address), count: count)
        case .readHolding(let address, let count):
            result = device.read(unit: unit, table: .holding, start: Int(address), count: count)
        case .writeSingle(let address, let value):
            result = device.write(unit: unit, start: Int(address), values: [value]).map { .failure($0) } ?? .success([])
        case .writeMultiple(let address, let values):
            result = device.write(unit: unit, start: Int(address), values: values).map { .failure($0) } ?? .success([])
        }
        switch result {
        case .success(let registers):
            statistics[unit, default: DeviceStatistics()].recordSuccess(microseconds: 0)
            return .success(registers)
        case .failure(let exception):
            return failure(.exception(code: exception.rawValue))
        }
    }

    public func identify(_ device: DeviceSpec, required: ProtocolVersion) async throws(BusError) -> IdentityBlock {
        let identity = try await read(IdentityBlock.self, unit: device.unitId, priority: .command)
        do {
            try identity.check(against: device, required: required)
        } catch {
            throw BusError(.incompatibleDevice(error), unitId: device.unitId, device: device.name,
                           operation: BusOperation.readInput(address: IdentityBlock.spec.start, count: IdentityBlock.spec.count).description)
        }
        return identity
    }

    public func read<B: RegisterBlock>(_ type: B.Type, unit: UInt8, priority: BusPriority) async throws(BusError) -> B {
        let spec = B.spec
        let operation: BusOperation = spec.table == .input
            ? .readInput(address: spec.start, count: spec.count)
            : .readHolding(address: spec.start, count: spec.count)
        let registers = try perform(unit: unit, operation)
        do {
            return try B(registers: registers)
        } catch {
            throw BusError(.malformedReply(error.description), unitId: unit, device: mapGuard.deviceName(unit: unit),
                           operation: operation.description)
        }
    }

    public func write<B: RegisterBlock>(_ block: B, unit: UInt8, priority: BusPriority) async throws(BusError) {
        let values: [UInt16]
        do {
            values = try block.registers()
        } catch {
            throw BusError(.invalidValue(error), unitId: unit, device: mapGuard.deviceName(unit: unit),
                           operation: BusOperation.writeMultiple(address: B.spec.start, values: []).description)
        }
        _ = try perform(unit: unit, .writeMultiple(address: B.spec.start, values: values))
    }

    // MARK: Cyclic outputs and polls

    public func makeOutputSlot(unit: UInt8, address: UInt16, capacity: Int, priority: BusPriority) -> OutputSlot {
        let slot = OutputSlot(unit: unit, address: address, capacity: max(1, capacity), priority: priority)
        lock.lock()
        slots.append(slot)
        slots.sort { $0.priority < $1.priority }
        lock.unlock()
        return slot
    }

    @discardableResult
    public func post(_ slot: OutputSlot, _ fill: (UnsafeMutableBufferPointer<UInt16>) -> Int) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return slot.stage(fill, at: clock.nanoseconds())
    }

    public func status(of slot: OutputSlot) -> OutputSlotStatus {
        lock.lock()
        defer { lock.unlock() }
        return slot.statusSnapshot()
    }

    public func addPoll(unit: UInt8, block: BlockSpec, periodMilliseconds: Int) {
        lock.lock()
        polls.append(Poll(unit: unit, block: block, periodNanoseconds: UInt64(max(0, periodMilliseconds)) * 1_000_000,
                          nextDueNanoseconds: clock.nanoseconds()))
        lock.unlock()
    }

    public func latest(unit: UInt8, block: BlockSpec) -> PolledBlock? {
        lock.lock()
        defer { lock.unlock() }
        return latestBlocks[PollKey(unit: unit, table: block.table, start: block.start)]
    }

    public func statisticsSnapshot() -> [DeviceStatisticsSnapshot] {
        lock.lock()
        defer { lock.unlock() }
        return statistics.keys.sorted().map { unit in
            statistics[unit, default: DeviceStatistics()].snapshot(unitId: unit, device: mapGuard.deviceName(unit: unit))
        }
    }

    /// What the bus thread does between two ticks: every posted slot is written (in
    /// priority order), then every due poll is read, stamped with the virtual time.
    public func pump() {
        let now = clock.nanoseconds()
        lock.lock()
        defer { lock.unlock() }
        for slot in slots where slot.dirty {
            slot.dirty = false
            let values = Array(UnsafeBufferPointer(start: slot.storage, count: slot.count))
            let operation: BusOperation = values.count == 1
                ? .writeSingle(address: slot.address, value: values[0])
                : .writeMultiple(address: slot.address, values: values)
            let result: Result<[UInt16], BusError>
            if let lose = writesToLose[slot.unit], lose > 0 {
                writesToLose[slot.unit] = lose - 1
                statistics[slot.unit, default: DeviceStatistics()].recordFailure(.timeout(milliseconds: 100))
                result = .failure(BusError(.timeout(milliseconds: 100), unitId: slot.unit, device: mapGuard.deviceName(unit: slot.unit),
                                           operation: operation.description))
            } else {
                result = transact(unit: slot.unit, operation)
            }
            switch result {
            case .success:
                slot.sent = slot.postedSequence
                slot.sentAt = now
                slot.postToWireNanoseconds = now &- slot.postedAtNanoseconds
                slot.consecutiveFailures = 0
            case .failure(let failure):
                slot.failedSequence = slot.postedSequence
                slot.failures += 1
                slot.consecutiveFailures += 1
                slot.lastErrorKind = failure.kind
            }
        }
        for i in polls.indices where polls[i].nextDueNanoseconds <= now {
            let poll = polls[i]
            polls[i].nextDueNanoseconds = max(poll.nextDueNanoseconds &+ poll.periodNanoseconds, now &+ 1)
            let operation: BusOperation = poll.block.table == .input
                ? .readInput(address: poll.block.start, count: poll.block.count)
                : .readHolding(address: poll.block.start, count: poll.block.count)
            let key = PollKey(unit: poll.unit, table: poll.block.table, start: poll.block.start)
            let previous = latestBlocks[key]
            let result: Result<[UInt16], BusError>
            if let lose = pollsToLose[poll.unit], lose > 0 {
                pollsToLose[poll.unit] = lose - 1
                statistics[poll.unit, default: DeviceStatistics()].recordFailure(.timeout(milliseconds: 100))
                result = .failure(BusError(.timeout(milliseconds: 100), unitId: poll.unit, device: mapGuard.deviceName(unit: poll.unit),
                                           operation: operation.description))
            } else {
                result = transact(unit: poll.unit, operation)
            }
            switch result {
            case .success(let registers):
                latestBlocks[key] = PolledBlock(unitId: poll.unit, block: poll.block.name, registers: registers,
                                                sampledAtNanoseconds: now, sequence: (previous?.sequence ?? 0) + 1,
                                                consecutiveFailures: 0, lastError: nil)
            case .failure(let error):
                latestBlocks[key] = PolledBlock(unitId: poll.unit, block: poll.block.name, registers: previous?.registers ?? [],
                                                sampledAtNanoseconds: previous?.sampledAtNanoseconds ?? 0,
                                                sequence: previous?.sequence ?? 0,
                                                consecutiveFailures: (previous?.consecutiveFailures ?? 0) + 1, lastError: error)
            }
        }
    }
}
