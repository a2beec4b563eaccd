import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// The real-time control loop.
///
/// A dedicated thread wakes at absolute deadlines (`next += period`). Each tick it
/// takes the newest polled device states, runs the safety supervisor, advances the
/// drives' state machines and measurements, and posts set-points and the watchdog
/// refresh into preallocated bus slots. Commands come in through a bounded mailbox
/// and leave as feedback in a fixed table; the state goes out as a plain snapshot.
/// Nothing in the steady-state tick allocates, logs or waits on the command side.
///
/// The tick is one function of (the clock's now, the newest polled blocks, the queued
/// commands) that posts writes and publishes a snapshot and feedback; the thread, the bus
/// (`ControlBus`) and the clock (`LoopClock`) are shells around it. `startStepped()` runs
/// the same tick without the thread, for virtual-time tests. By responsibility:
/// `ControlLoop+Tick` (the thread and the tick), `+Commands` (validation, set-points),
/// `+Drives`, `+Safety` (supervisor, watchdog), `+Reset`, `+Measurement`, `+Publishing`.
public final class ControlLoop: @unchecked Sendable {
    public let configuration: ControlConfiguration
    public let bus: any ControlBus
    /// The loop's time: CLOCK_MONOTONIC on a robot, a `VirtualClock` in virtual-time tests.
    public let clock: any LoopClock
    let mailbox: CommandMailbox

    // Fixed at start from the detector's instrument record.
    public internal(set) var detectorInfo: DetectorInfo?
    /// Firmware version of each unit ("1.2"), read at start; stored with every scan.
    public internal(set) var firmwareVersions: [String: String] = [:]
    /// The protocol 1.1 features each unit has (read at start).
    public internal(set) var protocolFeatures = ProtocolFeatures()
    /// What the start-up did beyond the checks, for the daemon's log: features missing,
    /// the pose given, the power-up interlock released.
    public internal(set) var startupNotes: [String] = []

    // Loop-thread state (touched by the loop thread only once started).
    var chassis: DriveChannel
    var lift: DriveChannel
    let safetySlot: OutputSlot
    /// The detector's control register: a reset pulses `clearOverload` to clear its latch.
    let detectorControlSlot: OutputSlot
    /// The chassis pose block (protocol 1.1): re-given after the chassis restarted.
    let poseSlot: OutputSlot
    /// The last pose the chassis reported while it knew it (`poseSet`), metres and degrees.
    var lastYardPose: (x: Double, y: Double, heading: Double)?
    /// The two newest samples behind `lastYardPose` (when, where), to carry it forward to
    /// the moment of a restart; and whether the restart now showing was carried already.
    var yardPoseHistory = YardPoseHistory()
    var watchdogToken: UInt16 = 0
    var lastRefreshNanoseconds: UInt64 = 0
    var stopCause: StopCause?
    var softwareEstopRequested = false
    /// Software e-stop requests, counted by the command side; never queued, never refused.
    /// The loop reads this at the top of every tick, before any queued command.
    let estopRequests = Atomic<UInt64>(0)
    /// How many of those requests the loop has acted on (loop thread only).
    var estopRequestsServed: UInt64 = 0
    var estopServedAtTick: UInt64 = 0
    /// Halt requests (a shutdown's stop), read at the top of every tick like the e-stop.
    let haltRequests = Atomic<UInt64>(0)
    var haltRequestsServed: UInt64 = 0
    var haltServedAtTick: UInt64 = 0
    /// Set on shutdown: motion commands are refused, except lowering the lift to park.
    let motionInhibited = Atomic<Bool>(false)
    var reset = ResetSequence()
    var measurement = MeasurementProgress()
    var tick: UInt64 = 0
    var startedAtNanoseconds: UInt64 = 0
    /// Recent detector samples (counts, time base) for the live rate; fixed size.
    var rateWindow = RateWindow()
    /// Detector samples with the position at each (a moving survey's counts); under `shared`.
    var countTrace = CountTrace()
    /// The range pair's readings with the pose latched with each; under `shared`.
    var rangeTrace = RangeTrace()
    /// The standing draw, measured from the battery current (W7.9).
    var standingDraw = StandingDraw()
    /// The protective-field scanner's state and what the loop did about it (H9).
    var fieldWatch = FieldWatch()

    // Shared with the command side, under `shared`.
    let shared = NSLock()
    var snapshotValue = RobotSnapshot()
    var deadmanArmed = false
    var lastKeepAliveNanoseconds: UInt64 = 0
    var latency = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
    var tickDuration = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
    var overruns: UInt64 = 0
    var unreportedOverruns: UInt64 = 0

    /// Set by `stop()`; the loop thread exits after its next tick.
    let stopRequested = Atomic<Bool>(false)
    /// Started with `startStepped()`: ticks come from `step()`, not from a thread.
    var stepped = false
    /// What the chassis set-point means, for the arrival check: mode and targets as sent.
    var chassisTarget: (mode: ChassisMode, a: Double, b: Double) = (.idle, 0, 0)
    /// The lift set-point as the loop last built it (mode and target), for the arrival
    /// and limit-switch checks: read from the typed command, not back from register words.
    var liftTarget = LiftCommand(controlword: [], mode: .idle)
    /// Pose when the current chassis command started (for relative moves).
    var chassisStartPose: (x: Double, y: Double, heading: Double) = (0, 0, 0)
    var thread: RealtimeThread?
    /// Why the loop is not real-time, if it is not (set once it started).
    public private(set) var realtimeNotes: [String] = []

    /// Per-tick hook for benchmarks (allocation counting); runs on the loop thread.
    public var tickObserver: (@Sendable (_ phase: TickPhase) -> Void)?
    public enum TickPhase: Sendable { case begin, end }

    public init(bus: any ControlBus, configuration: ControlConfiguration = ControlConfiguration(),
                clock: any LoopClock = SystemClock()) {
        self.bus = bus
        self.clock = clock
        self.mailbox = CommandMailbox(clock: clock)
        self.configuration = configuration
        let chassisSlot = bus.makeOutputSlot(unit: RegisterMap.chassis.unitId, address: ChassisCommand.spec.start,
                                             capacity: ChassisCommand.spec.count, priority: .command)
        let liftSlot = bus.makeOutputSlot(unit: RegisterMap.lift.unitId, address: LiftCommand.spec.start,
                                          capacity: LiftCommand.spec.count, priority: .command)
        safetySlot = bus.makeOutputSlot(unit: RegisterMap.safety.unitId, address: SafetyCommand.spec.start,
                                        capacity: SafetyCommand.spec.count, priority: .safety)
        detectorControlSlot = bus.makeOutputSlot(unit: RegisterMap.detector.unitId, address: DetectorCommand.spec.start,
                                                 capacity: 1, priority: .command)
        poseSlot = bus.makeOutputSlot(unit: RegisterMap.chassis.unitId, address: ChassisPose.spec.start,
                                      capacity: ChassisPose.spec.count, priority: .command)
        chassis = DriveChannel(device: .chassis, unit: RegisterMap.chassis.unitId, slot: chassisSlot, blockCount: ChassisCommand.spec.count)
        lift = DriveChannel(device: .lift, unit: RegisterMap.lift.unitId, slot: liftSlot, blockCount: LiftCommand.spec.count)
        // Valid idle images: every field inside its range, so the bus never refuses them.
        let chassisIdle = (try? ChassisCommand(controlword: [], mode: .idle).registers()) ?? chassis.words
        let liftIdle = (try? LiftCommand(controlword: [], mode: .idle).registers()) ?? lift.words
        chassis.words = chassisIdle
        chassis.setpoint = chassisIdle
        lift.words = liftIdle
        lift.setpoint = liftIdle
    }

    // MARK: Life cycle

    public enum StartError: Error, CustomStringConvertible {
        case invalidConfiguration([String])
        case device(BusError)
        case thread
        /// `start()` runs on the wall clock; a loop built on another clock is stepped.
        case needsStepping
        /// The configuration needs a protocol 1.1 feature a unit does not have.
        case missingFeature(String)

        public var description: String {
            switch self {
            case .invalidConfiguration(let problems): return "invalid control configuration: " + problems.joined(separator: "; ")
            case .device(let error): return error.description
            case .thread: return "could not start the control loop thread"
            case .needsStepping: return "this loop runs on a virtual clock: start it with startStepped() and drive it with step()"
            case .missingFeature(let what): return what
            }
        }
    }

    /// Checks every unit's identity and protocol version, reads the detector's record,
    /// starts the status polls and the loop thread. The robot does not move until told to.
    public func start() async throws(StartError) {
        // The thread schedules itself on CLOCK_MONOTONIC and stamps ticks with it; a loop
        // whose commands and keep-alives run on a virtual clock would mix the two.
        guard clock is SystemClock else { throw .needsStepping }
        try await prepare()
        let loopThread = RealtimeThread(priority: configuration.realtimePriority) { [self] me in
            self.run(thread: me)
        }
        thread = loopThread
        guard loopThread.start() else { throw .thread }
        // Wait for the first tick so callers see a live snapshot.
        for _ in 0..<200 where snapshot().tick == 0 { try? await Task.sleep(nanoseconds: 5_000_000) }
        realtimeNotes = loopThread.notes
    }

    /// The same checks and polls as `start()`, but no thread: whoever drives the loop
    /// calls `step()` once per period, with the clock advanced in between. This is how
    /// virtual-time tests (`RobotTesting.VirtualRobot`) run the very same tick.
    public func startStepped() async throws(StartError) {
        try await prepare()
        startedAtNanoseconds = clock.nanoseconds()
        stepped = true
    }

    /// One tick at the clock's present time. Only for a loop started with
    /// `startStepped()`, and always from one thread.
    public func step() {
        guard stepped else { return }
        step(now: clock.nanoseconds())
    }

    /// True when the loop has nothing in hand: no queued command, no axis moving to a
    /// target, no dwell, no reset. A virtual-time stepper may then hold time still until
    /// someone asks for something. Call from the thread that steps.
    public var isIdle: Bool {
        !mailbox.hasQueued && !chassis.isBusy && !lift.isBusy && !measurement.active && !reset.active
            && estopRequests.load(ordering: .relaxed) == estopRequestsServed
            && haltRequests.load(ordering: .relaxed) == haltRequestsServed
    }

    /// Stops the loop thread (after a last tick that halts both axes). The bus keeps running.
    public func stop() {
        guard let thread else { return }
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        thread.join()
        self.thread = nil
    }

    // MARK: Command side

    /// Queues a command. It is refused as expired if the loop takes it after `expiresIn`.
    /// An `.estop` is not queued: it goes through `requestSoftwareEstop()`.
    @discardableResult
    public func submit(_ command: RobotCommand, expiresIn seconds: Double = 5) -> UInt64 {
        let expiry = clock.nanoseconds() &+ UInt64(max(0, seconds) * 1e9)
        return submit(command, expiresAtNanoseconds: expiry)
    }

    /// Queues a command with an absolute CLOCK_MONOTONIC expiry.
    @discardableResult
    public func submit(_ command: RobotCommand, expiresAtNanoseconds: UInt64) -> UInt64 {
        if command == .estop { return estop().commandId }
        return mailbox.post(command, expiresAtNanoseconds: expiresAtNanoseconds,
                            estopsBefore: estopRequests.load(ordering: .sequentiallyConsistent))
    }

    /// A software e-stop with feedback under a command id (which never takes a place in
    /// the queue), and the ticket for `awaitSoftwareEstop`.
    public func estop() -> (commandId: UInt64, ticket: UInt64) {
        let id = mailbox.recordUnqueued(.estop)
        return (id, requestSoftwareEstop())
    }

    /// Asks for a software e-stop. It does not wait in, and cannot be refused by, the
    /// bounded command queue: the loop reads the request count at the top of its next
    /// tick, before any queued command, and latches the stop there. Returns a ticket:
    /// the stop has been acted on once `snapshot().estopRequestsServed >= ticket`.
    @discardableResult
    public func requestSoftwareEstop() -> UInt64 {
        estopRequests.add(1, ordering: .sequentiallyConsistent).newValue
    }

    /// Halts both axes at the top of the next tick, without the command queue (so a full
    /// queue cannot delay it). With `inhibitMotion`, every later motion command is refused
    /// (`shuttingDown`) except lowering the lift to its park height: a shutdown's stop,
    /// which a scan still winding down cannot undo. Returns a ticket for
    /// `snapshot().haltRequestsServed`.
    @discardableResult
    public func requestHalt(inhibitMotion: Bool) -> UInt64 {
        if inhibitMotion { motionInhibited.store(true, ordering: .sequentiallyConsistent) }
        return haltRequests.add(1, ordering: .sequentiallyConsistent).newValue
    }

    /// Waits (up to `timeout` seconds) until the loop has latched the software e-stop
    /// for `ticket`; true if it has. The stop's output is posted in the same tick.
    public func awaitSoftwareEstop(ticket: UInt64, timeout: Double) async -> Bool {
        let deadline = MonotonicClock.nanoseconds() &+ UInt64(max(0, timeout) * 1e9)
        while true {
            let s = snapshot()
            if s.estopRequestsServed >= ticket && s.stopCause == .softwareEstop { return true }
            if MonotonicClock.nanoseconds() >= deadline { return false }
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    public func feedback(_ id: UInt64) -> CommandFeedback? {
        mailbox.feedback(for: id)
    }

    /// Waits until the command reaches a final state (or `timeout` passes, or the task
    /// is cancelled); returns the feedback as it then stands.
    public func result(of id: UInt64, timeout: Double = 120) async -> CommandFeedback? {
        let deadline = MonotonicClock.nanoseconds() &+ UInt64(timeout * 1e9)
        while MonotonicClock.nanoseconds() < deadline && !Task.isCancelled {
            if let f = mailbox.feedback(for: id), f.state.isFinal { return f }
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        return mailbox.feedback(for: id)
    }

    /// Submits and waits.
    public func run(_ command: RobotCommand, timeout: Double = 120) async -> CommandFeedback? {
        await result(of: submit(command), timeout: timeout)
    }

    public func snapshot() -> RobotSnapshot {
        shared.lock()
        defer { shared.unlock() }
        return snapshotValue
    }

    /// The deadman: while armed, the robot stops if `keepAlive` is not called within
    /// `deadmanTimeoutSeconds`. The command server arms it while a client holds motion.
    public func armDeadman(_ armed: Bool) {
        shared.lock()
        deadmanArmed = armed
        lastKeepAliveNanoseconds = clock.nanoseconds()
        shared.unlock()
    }

    public func keepAlive() {
        shared.lock()
        lastKeepAliveNanoseconds = clock.nanoseconds()
        shared.unlock()
    }

    /// Loop timing so far, in microseconds.
    public struct Statistics: Sendable, Equatable {
        public var ticks: UInt64
        public var overruns: UInt64
        public var wakeLatencyP50: UInt64
        public var wakeLatencyP99: UInt64
        public var wakeLatencyP999: UInt64
        public var wakeLatencyMax: UInt64
        public var tickDurationP99: UInt64
        public var tickDurationMax: UInt64
    }

    public func statistics() -> Statistics {
        shared.lock()
        defer { shared.unlock() }
        return Statistics(ticks: latency.totalCount, overruns: overruns,
                          wakeLatencyP50: latency.valueAtPercentile(50), wakeLatencyP99: latency.valueAtPercentile(99),
                          wakeLatencyP999: latency.valueAtPercentile(99.9), wakeLatencyMax: latency.max,
                          tickDurationP99: tickDuration.valueAtPercentile(99), tickDurationMax: tickDuration.max)
    }

    /// Clears the timing histograms (a benchmark's warm-up).
    public func resetStatistics() {
        shared.lock()
        latency.reset()
        tickDuration.reset()
        overruns = 0
        shared.unlock()
    }

    /// Overruns since the last call, for a throttled warning outside the loop.
    public func takeUnreportedOverruns() -> UInt64 {
        shared.lock()
        defer { shared.unlock() }
        let n = unreportedOverruns
        unreportedOverruns = 0
        return n
    }
}
