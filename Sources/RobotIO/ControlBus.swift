import FirmwareProtocol

/// What the control loop needs of a bus: typed block reads and writes at start-up,
/// preallocated output slots and the newest polled blocks every tick.
///
/// Two implementations: `ModbusBus` (libmodbus on its own thread, real time) and
/// `SteppedBus` (in memory, wired to a register device and advanced tick by tick in
/// virtual time). The loop cannot tell them apart, so what a virtual-time test shows
/// of the loop holds on the real bus too.
public protocol ControlBus: AnyObject, Sendable {
    /// Where the bus goes, for logs ("/dev/ttyUSB0 @115200", "in-memory simulator").
    var endpointDescription: String { get }
    var isLinkUp: Bool { get }
    func start()
    func stop()
    func identify(_ device: DeviceSpec, required: ProtocolVersion) async throws(BusError) -> IdentityBlock
    func read<B: RegisterBlock>(_ type: B.Type, unit: UInt8, priority: BusPriority) async throws(BusError) -> B
    func write<B: RegisterBlock>(_ block: B, unit: UInt8, priority: BusPriority) async throws(BusError)
    func makeOutputSlot(unit: UInt8, address: UInt16, capacity: Int, priority: BusPriority) -> OutputSlot
    /// Fills `slot` and hands it to the bus. Must not allocate: the loop calls it every tick.
    @discardableResult
    func post(_ slot: OutputSlot, _ fill: (UnsafeMutableBufferPointer<UInt16>) -> Int) -> UInt64
    func status(of slot: OutputSlot) -> OutputSlotStatus
    func addPoll(unit: UInt8, block: BlockSpec, periodMilliseconds: Int)
    func latest(unit: UInt8, block: BlockSpec) -> PolledBlock?
    func statisticsSnapshot() -> [DeviceStatisticsSnapshot]
}

extension ModbusBus: ControlBus {
    public var endpointDescription: String { configuration.endpoint.description }
}

/// The loop's time source, in nanoseconds that never jump.
public protocol LoopClock: Sendable {
    func nanoseconds() -> UInt64
}

/// CLOCK_MONOTONIC: the real robot's clock.
public struct SystemClock: LoopClock {
    public init() {}
    @inline(__always)
    public func nanoseconds() -> UInt64 { MonotonicClock.nanoseconds() }
}
