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
public final class ControlLoop: @unchecked Sendable {
    public let configuration: ControlConfiguration
    public let bus: any ControlBus
    /// The loop's time: CLOCK_MONOTONIC on a robot, a `VirtualClock` in virtual-time tests.
    public let clock: any LoopClock
    private let mailbox: CommandMailbox

    // Fixed at start from the detector's instrument record.
    public private(set) var detectorInfo: DetectorInfo?
    /// Firmware version of each unit ("1.2"), read at start; stored with every scan.
    public private(set) var firmwareVersions: [String: String] = [:]

    // Loop-thread state (touched by the loop thread only once started).
    private var chassis: DriveChannel
    private var lift: DriveChannel
    private let safetySlot: OutputSlot
    /// The detector's control register: a reset pulses `clearOverload` to clear its latch.
    private let detectorControlSlot: OutputSlot
    private var watchdogToken: UInt16 = 0
    private var lastRefreshNanoseconds: UInt64 = 0
    private var stopCause: StopCause?
    private var softwareEstopRequested = false
    /// Software e-stop requests, counted by the command side; never queued, never refused.
    /// The loop reads this at the top of every tick, before any queued command.
    private let estopRequests = Atomic<UInt64>(0)
    /// How many of those requests the loop has acted on (loop thread only).
    private var estopRequestsServed: UInt64 = 0
    private var estopServedAtTick: UInt64 = 0
    /// Halt requests (a shutdown's stop), read at the top of every tick like the e-stop.
    private let haltRequests = Atomic<UInt64>(0)
    private var haltRequestsServed: UInt64 = 0
    private var haltServedAtTick: UInt64 = 0
    /// Set on shutdown: motion commands are refused, except lowering the lift to park.
    private let motionInhibited = Atomic<Bool>(false)
    private var reset = ResetSequence()
    private var measurement = MeasurementProgress()
    private var tick: UInt64 = 0
    private var startedAtNanoseconds: UInt64 = 0
    /// Recent detector samples (counts, time base) for the live rate; fixed size.
    private var rateWindow = RateWindow()

    // Shared with the command side, under `shared`.
    private let shared = NSLock()
    private var snapshotValue = RobotSnapshot()
    private var deadmanArmed = false
    private var lastKeepAliveNanoseconds: UInt64 = 0
    private var latency = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
    private var tickDuration = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
    private var overruns: UInt64 = 0
    private var unreportedOverruns: UInt64 = 0

    private let stopFlag = StopFlag()
    /// Started with `startStepped()`: ticks come from `step()`, not from a thread.
    private var stepped = false
    private var thread: RealtimeThread?
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
        chassis = DriveChannel(device: "chassis", unit: RegisterMap.chassis.unitId, slot: chassisSlot, blockCount: ChassisCommand.spec.count)
        lift = DriveChannel(device: "lift", unit: RegisterMap.lift.unitId, slot: liftSlot, blockCount: LiftCommand.spec.count)
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

        public var description: String {
            switch self {
            case .invalidConfiguration(let problems): return "invalid control configuration: " + problems.joined(separator: "; ")
            case .device(let error): return error.description
            case .thread: return "could not start the control loop thread"
            }
        }
    }

    /// Checks every unit's identity and protocol version, reads the detector's record,
    /// starts the status polls and the loop thread. The robot does not move until told to.
    public func start() async throws(StartError) {
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

    private func prepare() async throws(StartError) {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw .invalidConfiguration(problems) }
        bus.start()
        do {
            for device in RegisterMap.devices {
                let identity = try await bus.identify(device, required: .current)
                firmwareVersions[device.name] = "\(identity.firmwareVersionText) (protocol \(identity.protocolVersion))"
            }
            detectorInfo = try await bus.read(DetectorInfo.self, unit: RegisterMap.detector.unitId, priority: .command)
            // Clear any old set-point the drives hold from a previous run (no jump on start).
            try await bus.write(ChassisCommand(controlword: [], mode: .idle), unit: RegisterMap.chassis.unitId, priority: .command)
            try await bus.write(LiftCommand(controlword: [], mode: .idle), unit: RegisterMap.lift.unitId, priority: .command)
        } catch {
            throw .device(error)
        }
        bus.addPoll(unit: RegisterMap.safety.unitId, block: SafetyStatus.spec, periodMilliseconds: configuration.safetyPollMilliseconds)
        bus.addPoll(unit: RegisterMap.chassis.unitId, block: ChassisStatus.spec, periodMilliseconds: configuration.chassisPollMilliseconds)
        bus.addPoll(unit: RegisterMap.lift.unitId, block: LiftStatus.spec, periodMilliseconds: configuration.liftPollMilliseconds)
        bus.addPoll(unit: RegisterMap.detector.unitId, block: DetectorStatus.spec, periodMilliseconds: configuration.detectorPollMilliseconds)
    }

    /// Stops the loop thread (after a last tick that halts both axes). The bus keeps running.
    public func stop() {
        guard let thread else { return }
        stopFlag.set()
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

    // MARK: The loop thread

    private func run(thread: RealtimeThread) {
        let period = configuration.tickNanoseconds
        startedAtNanoseconds = MonotonicClock.nanoseconds()
        var next = startedAtNanoseconds + period
        while !stopFlag.isSet {
            sleepUntil(nanoseconds: next)
            let woke = MonotonicClock.nanoseconds()
            tickObserver?(.begin)
            step(now: woke)
            tickObserver?(.end)
            let done = MonotonicClock.nanoseconds()
            shared.lock()
            _ = latency.record(woke > next ? (woke - next) / 1000 : 0)
            _ = tickDuration.record((done - woke) / 1000)
            shared.unlock()
            next += period
            if done > next {
                // Overran: skip the missed deadlines instead of running ticks back to back.
                let missed = (done - next) / period + 1
                next += missed * period
                shared.lock()
                overruns += missed
                unreportedOverruns += missed
                shared.unlock()
            }
        }
        // Last act: decelerate anything still moving.
        haltAxes()
    }

    /// One tick, on the loop thread.
    private func step(now: UInt64) {
        tick &+= 1
        let safetyBlock = bus.latest(unit: RegisterMap.safety.unitId, block: SafetyStatus.spec)
        let chassisBlock = bus.latest(unit: RegisterMap.chassis.unitId, block: ChassisStatus.spec)
        let liftBlock = bus.latest(unit: RegisterMap.lift.unitId, block: LiftStatus.spec)
        let detectorBlock = bus.latest(unit: RegisterMap.detector.unitId, block: DetectorStatus.spec)
        let safety = safetyBlock.flatMap { try? SafetyStatus(registers: $0.registers) }
        let chassisStatus = chassisBlock.flatMap { try? ChassisStatus(registers: $0.registers) }
        let liftStatus = liftBlock.flatMap { try? LiftStatus(registers: $0.registers) }
        let detector = detectorBlock.flatMap { try? DetectorStatus(registers: $0.registers) }
        let inputs = Inputs(now: now, safety: safety, safetyBlock: safetyBlock, chassis: chassisStatus, chassisBlock: chassisBlock,
                            lift: liftStatus, liftBlock: liftBlock, detector: detector, detectorBlock: detectorBlock)

        // A software e-stop first, before any queued command: it acts in this tick.
        let estopsRequested = estopRequests.load(ordering: .sequentiallyConsistent)
        if estopsRequested != estopRequestsServed {
            softwareEstopRequested = true
            trip(.softwareEstop, inputs)
            estopRequestsServed = estopsRequested
            estopServedAtTick = tick
            mailbox.completeUnqueuedEstops()
        }
        let haltsRequested = haltRequests.load(ordering: .sequentiallyConsistent)
        if haltsRequested != haltRequestsServed {
            overrideMotion(with: 0)
            haltRequestsServed = haltsRequested
            haltServedAtTick = tick
        }
        // Then commands, so a stop taken now acts in this same tick.
        var budget = 8
        while budget > 0, let entry = mailbox.take() {
            budget -= 1
            handle(entry, inputs)
        }
        supervise(inputs)
        reassertHalt(inputs)
        advance(&chassis, status: inputs.chassisDrive, inputs)
        advance(&lift, status: inputs.liftDrive, inputs)
        advanceReset(inputs)
        advanceMeasurement(inputs)
        refreshWatchdog(now: now)
        publish(inputs)
    }

    // MARK: Inputs

    struct DriveInput {
        var state: DriveState
        var faultCode: UInt16
        var targetReached: Bool
        var moving: Bool
        var sampledAt: UInt64
        var available: Bool
    }

    struct Inputs {
        let now: UInt64
        let safety: SafetyStatus?
        let safetyBlock: PolledBlock?
        let chassis: ChassisStatus?
        let chassisBlock: PolledBlock?
        let lift: LiftStatus?
        let liftBlock: PolledBlock?
        let detector: DetectorStatus?
        let detectorBlock: PolledBlock?

        var chassisDrive: DriveInput? {
            guard let c = chassis, let b = chassisBlock else { return nil }
            return DriveInput(state: c.driveState, faultCode: c.faultCode, targetReached: c.flags.contains(.targetReached),
                              moving: c.flags.contains(.moving), sampledAt: b.sampledAtNanoseconds,
                              available: b.consecutiveFailures == 0)
        }

        var liftDrive: DriveInput? {
            guard let l = lift, let b = liftBlock else { return nil }
            let done = l.flags.contains(.targetReached) && !l.flags.contains(.moving)
            return DriveInput(state: l.driveState, faultCode: l.faultCode, targetReached: done,
                              moving: l.flags.contains(.moving), sampledAt: b.sampledAtNanoseconds,
                              available: b.consecutiveFailures == 0)
        }
    }

    // MARK: Commands

    private func handle(_ entry: CommandMailbox.Entry, _ inputs: Inputs) {
        let id = entry.id
        if inputs.now > entry.expiresAtNanoseconds {
            mailbox.update(id, .expired, problem: .expired)
            return
        }
        switch entry.command {
        case .estop:
            // Not queued by `submit`; kept for completeness.
            softwareEstopRequested = true
            trip(.softwareEstop, inputs)
            mailbox.update(id, .done)
            return
        case .stop:
            overrideMotion(with: id)
            mailbox.update(id, .done)
            return
        case .resetFault, .releaseEstop:
            if entry.estopsBefore < estopRequestsServed {
                // Sent before the latest e-stop was pressed: it must not undo that stop.
                mailbox.update(id, .blocked, problem: .estopPressedSince)
                return
            }
            if case .resetFault = entry.command, stopCause == .softwareEstop {
                mailbox.update(id, .blocked, problem: .causeStillPresent(.softwareEstop))
                return
            }
            if let present = causeStillPresent(inputs) {
                mailbox.update(id, .blocked, problem: .causeStillPresent(present))
                return
            }
            softwareEstopRequested = false
            reset.begin(commandId: id, now: inputs.now)
            mailbox.update(id, .running)
            return
        case .measure(let seconds):
            guard seconds > 0, seconds <= 600 else {
                mailbox.update(id, .blocked, problem: .outOfRange(what: "dwell", value: seconds, minimum: 0.1, maximum: 600, unit: "s"))
                return
            }
            guard let block = inputs.detectorBlock, block.consecutiveFailures == 0, inputs.detector != nil, detectorInfo != nil else {
                mailbox.update(id, .blocked, problem: .deviceUnavailable(device: "detector"))
                return
            }
            if measurement.active { mailbox.update(measurement.commandId, .overridden, problem: .overridden) }
            measurement.begin(commandId: id, dwellMilliseconds: UInt32(seconds * 1000), afterSequence: block.sequence)
            mailbox.update(id, .running)
            return
        default:
            break
        }
        // Motion commands.
        if motionInhibited.load(ordering: .relaxed), entry.command != .lift(heightMetres: configuration.liftParkMetres) {
            mailbox.update(id, .blocked, problem: .shuttingDown)
            return
        }
        if let cause = stopCause {
            mailbox.update(id, .blocked, problem: .stopped(cause))
            return
        }
        if let problem = prepareMotion(entry.command, inputs) {
            mailbox.update(id, .blocked, problem: problem)
            return
        }
        var channel = entry.command.usesChassis ? chassis : lift
        if channel.isBusy { mailbox.update(channel.commandId, .overridden, problem: .overridden) }
        channel.commandId = id
        channel.phase = .enabling
        channel.allowedSeconds = expectedSeconds(entry.command, inputs) * 1.5 + 3
        channel.deadlineNanoseconds = inputs.now &+ UInt64(channel.allowedSeconds * 1e9)
        if entry.command.usesChassis { chassis = channel } else { lift = channel }
        mailbox.update(id, .running)
    }

    /// Validates a motion command and writes its set-point into the channel.
    private func prepareMotion(_ command: RobotCommand, _ inputs: Inputs) -> CommandProblem? {
        let c = configuration
        switch command {
        case let .walk(metres, speed):
            guard abs(metres) <= c.maximumWalkMetres, metres.isFinite else {
                return .outOfRange(what: "walk distance", value: metres, minimum: -c.maximumWalkMetres, maximum: c.maximumWalkMetres, unit: "m")
            }
            guard let pose = inputs.chassis else { return .deviceUnavailable(device: "chassis") }
            let h = pose.headingDegrees * .pi / 180
            let tx = pose.positionXMetres + metres * cos(h)
            let ty = pose.positionYMetres + metres * sin(h)
            if let problem = checkPath(fromX: pose.positionXMetres, fromY: pose.positionYMetres, toX: tx, toY: ty) { return problem }
            if let problem = checkSpeed(speed) { return problem }
            fillChassis(mode: .moveRelative, a: Int32((metres * 1000).rounded()), b: 0, speed: speed)
        case let .walkTo(x, y, speed):
            guard let pose = inputs.chassis else { return .deviceUnavailable(device: "chassis") }
            let distance = ((x - pose.positionXMetres) * (x - pose.positionXMetres) + (y - pose.positionYMetres) * (y - pose.positionYMetres)).squareRoot()
            guard distance <= c.maximumWalkMetres, x.isFinite, y.isFinite else {
                return .outOfRange(what: "walk distance", value: distance, minimum: 0, maximum: c.maximumWalkMetres, unit: "m")
            }
            if let problem = checkPath(fromX: pose.positionXMetres, fromY: pose.positionYMetres, toX: x, toY: y) { return problem }
            if let problem = checkSpeed(speed) { return problem }
            fillChassis(mode: .moveTo, a: Int32((x * 1000).rounded()), b: Int32((y * 1000).rounded()), speed: speed)
        case .turn(let degrees):
            guard abs(degrees) <= 360, degrees.isFinite else {
                return .outOfRange(what: "turn", value: degrees, minimum: -360, maximum: 360, unit: "deg")
            }
            fillChassis(mode: .turnRelative, a: Int32((degrees * 100).rounded()), b: 0, speed: nil)
        case .turnTo(let heading):
            guard abs(heading) <= 180, heading.isFinite else {
                return .outOfRange(what: "heading", value: heading, minimum: -180, maximum: 180, unit: "deg")
            }
            fillChassis(mode: .turnTo, a: Int32((heading * 100).rounded()), b: 0, speed: nil)
        case .lift(let height):
            guard height >= c.liftMinimumMetres, height <= c.liftMaximumMetres, height.isFinite else {
                return .outOfRange(what: "lift height", value: height, minimum: c.liftMinimumMetres, maximum: c.liftMaximumMetres, unit: "m")
            }
            guard let l = inputs.lift else { return .deviceUnavailable(device: "lift") }
            guard l.flags.contains(.homed) else { return .liftNotHomed }
            fillLift(mode: .profilePosition, heightMetres: height)
        case .homeLift:
            guard inputs.lift != nil else { return .deviceUnavailable(device: "lift") }
            fillLift(mode: .homing, heightMetres: c.liftMinimumMetres)
        default:
            return nil
        }
        return nil
    }

    private func checkSpeed(_ speed: Double?) -> CommandProblem? {
        guard let speed else { return nil }
        let maximum = configuration.chassisMaxSpeedMetresPerSecond
        guard speed >= 0.01, speed <= maximum else {
            return .outOfRange(what: "speed", value: speed, minimum: 0.01, maximum: maximum, unit: "m/s")
        }
        return nil
    }

    /// A path may not enter a keep-out zone. A robot already inside one (pushed into a
    /// container's margin) may leave it by the short way: at most
    /// `keepOutEscapeMetres` of the path inside, so never across the container.
    private func checkPath(fromX: Double, fromY: Double, toX: Double, toY: Double) -> CommandProblem? {
        let blocked = configuration.keepOutZones.contains { zone in
            if zone.contains(x: fromX, y: fromY) {
                return zone.contains(x: toX, y: toY)
                    || zone.lengthInside(fromX: fromX, fromY: fromY, toX: toX, toY: toY) > Self.keepOutEscapeMetres
            }
            return zone.intersects(fromX: fromX, fromY: fromY, toX: toX, toY: toY)
        }
        return blocked ? .keepOut(x: toX, y: toY) : nil
    }

    /// How much of a path leaving a keep-out zone may run inside it.
    static let keepOutEscapeMetres = 0.25

    private func fillChassis(mode: ChassisMode, a: Int32, b: Int32, speed: Double?) {
        let c = configuration
        let v = speed ?? c.chassisMaxSpeedMetresPerSecond
        chassis.setpoint[1] = mode.rawValue
        chassis.setpoint[2] = UInt16(truncatingIfNeeded: UInt32(bitPattern: a) >> 16)
        chassis.setpoint[3] = UInt16(truncatingIfNeeded: UInt32(bitPattern: a))
        chassis.setpoint[4] = UInt16(truncatingIfNeeded: UInt32(bitPattern: b) >> 16)
        chassis.setpoint[5] = UInt16(truncatingIfNeeded: UInt32(bitPattern: b))
        chassis.setpoint[6] = UInt16(max(1, min(500, (v * 1000).rounded())))
        chassis.setpoint[7] = UInt16(max(1, min(9000, (c.turnRateDegreesPerSecond * 100).rounded())))
        chassis.setpoint[8] = UInt16(max(1, min(500, (c.chassisAccelerationMetresPerSecond2 * 1000).rounded())))
        chassisTarget = (mode, Double(a), Double(b))
    }

    private func fillLift(mode: LiftMode, heightMetres: Double) {
        let c = configuration
        lift.setpoint[1] = mode.rawValue
        lift.setpoint[2] = UInt16(max(300, min(2800, (heightMetres * 1000).rounded())))
        lift.setpoint[3] = UInt16(max(1, min(200, (c.liftMaxSpeedMetresPerSecond * 1000).rounded())))
        lift.setpoint[4] = UInt16(max(1, min(400, (c.liftAccelerationMetresPerSecond2 * 1000).rounded())))
    }

    /// What the chassis set-point means, for the arrival check: mode and targets as sent.
    private var chassisTarget: (mode: ChassisMode, a: Double, b: Double) = (.idle, 0, 0)
    /// Pose when the current chassis command started (for relative moves).
    private var chassisStartPose: (x: Double, y: Double, heading: Double) = (0, 0, 0)

    private func expectedSeconds(_ command: RobotCommand, _ inputs: Inputs) -> Double {
        let c = configuration
        switch command {
        case let .walk(metres, speed):
            return TrapezoidalProfile(distance: metres, maxSpeed: speed ?? c.chassisMaxSpeedMetresPerSecond,
                                      acceleration: c.chassisAccelerationMetresPerSecond2).duration
        case let .walkTo(x, y, speed):
            let px = inputs.chassis?.positionXMetres ?? x
            let py = inputs.chassis?.positionYMetres ?? y
            let distance = ((x - px) * (x - px) + (y - py) * (y - py)).squareRoot()
            return 180 / c.turnRateDegreesPerSecond + 1
                + TrapezoidalProfile(distance: distance, maxSpeed: speed ?? c.chassisMaxSpeedMetresPerSecond,
                                     acceleration: c.chassisAccelerationMetresPerSecond2).duration
        case .turn(let degrees):
            return abs(degrees) / c.turnRateDegreesPerSecond + 1
        case .turnTo:
            return 180 / c.turnRateDegreesPerSecond + 1
        case .lift(let height):
            let from = inputs.lift.map { Double($0.heightMillimetres) / 1000 } ?? c.liftMinimumMetres
            return TrapezoidalProfile(distance: height - from, maxSpeed: c.liftMaxSpeedMetresPerSecond,
                                      acceleration: c.liftAccelerationMetresPerSecond2).duration
        case .homeLift:
            return 2.8 / 0.05 + 2
        default:
            return 0
        }
    }

    private func overrideMotion(with id: UInt64) {
        if chassis.isBusy { mailbox.update(chassis.commandId, .overridden, problem: .overridden) }
        if lift.isBusy { mailbox.update(lift.commandId, .overridden, problem: .overridden) }
        haltAxes()
        chassis.phase = .idle
        lift.phase = .idle
    }

    /// Decelerates enabled axes and holds them (halt bit, idle mode), keeping them enabled.
    /// Drives that are not enabled are left alone: a halt must never enable one.
    private func haltAxes() {
        let chassisState = bus.latest(unit: chassis.unit, block: ChassisStatus.spec).flatMap { try? ChassisStatus(registers: $0.registers) }?.driveState
        let liftState = bus.latest(unit: lift.unit, block: LiftStatus.spec).flatMap { try? LiftStatus(registers: $0.registers) }?.driveState
        if chassisState == .operationEnabled || chassis.isBusy {
            chassis.postIdle(bus, controlword: Controlword.enableOperationCommand.union(.halt))
        }
        if liftState == .operationEnabled || lift.isBusy {
            lift.postIdle(bus, controlword: Controlword.enableOperationCommand.union(.halt))
        }
    }

    /// The bus does not send a failed write again, so a lost halt would let a drive run on
    /// to its old target. For an axis with no command (after a stop, a trip, a timeout or a
    /// failed command) whose last write failed while its drive still has operation enabled,
    /// post the halt again until one lands.
    private func reassertHalt(_ inputs: Inputs) {
        guard !reset.active else { return }
        let halt = Controlword.enableOperationCommand.union(.halt)
        if !chassis.isBusy, inputs.chassis?.driveState == .operationEnabled, bus.status(of: chassis.slot).failed(chassis.postedSequence) {
            chassis.postIdle(bus, controlword: halt)
        }
        if !lift.isBusy, inputs.lift?.driveState == .operationEnabled, bus.status(of: lift.slot).failed(lift.postedSequence) {
            lift.postIdle(bus, controlword: halt)
        }
    }

    // MARK: Drives

    private func advance(_ channel: inout DriveChannel, status: DriveInput?, _ inputs: Inputs) {
        guard channel.isBusy else { return }
        guard let status, status.available else {
            fail(&channel, .deviceUnavailable(device: channel.device))
            return
        }
        // One write in flight at a time, and act only on state sampled after it landed:
        // that keeps the CiA 402 edges and the one-step-per-write rule intact.
        let slotStatus = bus.status(of: channel.slot)
        if !slotStatus.landed(channel.postedSequence) {
            // A failed write is not sent again: waiting for it would stall the command for
            // ever. This command's own write failing fails it; an earlier command's is
            // forgotten, so a new command starts afresh instead of inheriting the failure.
            if slotStatus.failed(channel.postedSequence) {
                if channel.postedForCommand == channel.commandId {
                    fail(&channel, .busError("the \(channel.device) set-point write failed on the bus (\(slotStatus.lastError.map { "\($0)" } ?? "error")); send the command again"))
                    return
                }
                channel.postedSequence = 0
            } else {
                return
            }
        }
        guard status.sampledAt > slotStatus.sentAtNanoseconds else { return }
        if inputs.now > channel.deadlineNanoseconds {
            fail(&channel, .timedOut(seconds: channel.allowedSeconds))
            channel.postIdle(bus, controlword: Controlword.enableOperationCommand.union(.halt))
            return
        }
        switch channel.phase {
        case .idle:
            return
        case .enabling:
            if status.state == .fault || status.state == .faultReactionActive {
                fail(&channel, .driveFault(device: channel.device, code: status.faultCode))
                return
            }
            if status.state == .operationEnabled {
                if channel.unit == RegisterMap.chassis.unitId, let c = inputs.chassis {
                    chassisStartPose = (c.positionXMetres, c.positionYMetres, c.headingDegrees)
                }
                channel.postSetpoint(bus, controlword: Controlword.enableOperationCommand.union(.newSetpoint))
                channel.phase = .starting(sequence: channel.postedSequence)
            } else if let step = Controlword.stepTowardsEnabled(from: status.state) {
                // Enabling never carries a set-point: the image goes out as idle.
                channel.postIdle(bus, controlword: step)
            }
        case .starting:
            // The edge is on the wire; drop bit 4 so the next set-point can make a new edge.
            channel.post(bus, controlword: .enableOperationCommand)
            channel.phase = .moving(sequence: channel.postedSequence)
        case .moving:
            if status.state != .operationEnabled {
                if status.state == .fault { fail(&channel, .driveFault(device: channel.device, code: status.faultCode)) }
                else { fail(&channel, .stopped(stopCause ?? .watchdogExpired)) }
                return
            }
            guard status.targetReached, !status.moving else { return }
            if let error = arrivalError(channel, inputs), error > toleranceFor(channel) {
                fail(&channel, .notArrived(errorMetres: error))
                return
            }
            mailbox.update(channel.commandId, .done)
            channel.phase = .idle
        }
    }

    private func toleranceFor(_ channel: DriveChannel) -> Double {
        if channel.unit == RegisterMap.lift.unitId { return configuration.liftToleranceMetres }
        switch chassisTarget.mode {
        case .turnRelative, .turnTo: return configuration.headingToleranceDegrees
        default: return configuration.chassisToleranceMetres
        }
    }

    /// How far from its target the axis stopped (metres, or degrees for turns).
    private func arrivalError(_ channel: DriveChannel, _ inputs: Inputs) -> Double? {
        if channel.unit == RegisterMap.lift.unitId {
            // `channel` is the lift itself here (passed inout by `advance`): read it, not `self.lift`.
            guard let l = inputs.lift, channel.setpoint[1] == LiftMode.profilePosition.rawValue else { return nil }
            return abs(Double(l.heightMillimetres) - Double(channel.setpoint[2])) / 1000
        }
        guard let c = inputs.chassis else { return nil }
        let (mode, a, b) = chassisTarget
        switch mode {
        case .moveRelative:
            let h = chassisStartPose.heading * .pi / 180
            let tx = chassisStartPose.x + a / 1000 * cos(h)
            let ty = chassisStartPose.y + a / 1000 * sin(h)
            return ((c.positionXMetres - tx) * (c.positionXMetres - tx) + (c.positionYMetres - ty) * (c.positionYMetres - ty)).squareRoot()
        case .moveTo:
            let tx = a / 1000
            let ty = b / 1000
            return ((c.positionXMetres - tx) * (c.positionXMetres - tx) + (c.positionYMetres - ty) * (c.positionYMetres - ty)).squareRoot()
        case .turnRelative, .turnTo:
            let target = mode == .turnTo ? a / 100 : chassisStartPose.heading + a / 100
            var d = (c.headingDegrees - target).truncatingRemainder(dividingBy: 360)
            if d > 180 { d -= 360 }
            if d < -180 { d += 360 }
            return abs(d)
        case .idle:
            return nil
        }
    }

    private func fail(_ channel: inout DriveChannel, _ problem: CommandProblem) {
        mailbox.update(channel.commandId, .failed, problem: problem)
        channel.phase = .idle
    }

    // MARK: Safety supervisor

    private func supervise(_ inputs: Inputs) {
        if let cause = detectCause(inputs) { trip(cause, inputs) }
    }

    /// The first stop condition present now, if any.
    private func detectCause(_ inputs: Inputs) -> StopCause? {
        let c = configuration
        let graceOver = inputs.now &- startedAtNanoseconds > 1_000_000_000
        if let lost = lostLink("safety", inputs.safetyBlock, graceOver) { return lost }
        if let lost = lostLink("chassis", inputs.chassisBlock, graceOver) { return lost }
        if let lost = lostLink("lift", inputs.liftBlock, graceOver) { return lost }
        if let s = inputs.safety {
            if s.flags.contains(.estopButton) { return .hardwareEstop }
            if s.flags.contains(.watchdogExpired) && !reset.active { return .watchdogExpired }
        }
        let refresh = bus.status(of: safetySlot)
        if refresh.consecutiveFailures >= 3 {
            // Silence on the watchdog writes is a lost link to the safety unit; refusals
            // (exceptions) while the unit answers are a watchdog problem of their own.
            switch refresh.lastError {
            case .timeout?, .linkDown?, .crcMismatch?, .malformedReply?:
                return .lostLink(device: "safety", missedPolls: refresh.consecutiveFailures)
            default:
                return .watchdogWritesFailing
            }
        }
        if let ch = inputs.chassis, ch.flags.contains(.bumperFront) || ch.flags.contains(.bumperRear) { return .bumper }
        if let l = inputs.lift {
            let homing = lift.isBusy && lift.setpoint[1] == LiftMode.homing.rawValue
            if l.flags.contains(.upperLimit) { return .liftLimitSwitch(upper: true) }
            if l.flags.contains(.lowerLimit) && l.velocityMillimetresPerSecond < 0 && !homing { return .liftLimitSwitch(upper: false) }
            if l.flags.contains(.homed) {
                let h = Double(l.heightMillimetres) / 1000
                if h < c.liftMinimumMetres - 0.1 && !homing && l.heightMillimetres != 300 || h > c.liftMaximumMetres + 0.03 {
                    return .liftOutOfRange(heightMetres: h)
                }
            }
        }
        if !reset.active {
            if let ch = inputs.chassis, ch.driveState == .fault { return .driveFault(device: "chassis", code: ch.faultCode) }
            if let l = inputs.lift, l.driveState == .fault { return .driveFault(device: "lift", code: l.faultCode) }
        }
        if measurement.active, let d = inputs.detector, d.flags.contains(.overload) { return .detectorOverload }
        shared.lock()
        let armed = deadmanArmed
        let last = lastKeepAliveNanoseconds
        shared.unlock()
        if armed, inputs.now > last, Double(inputs.now - last) / 1e9 > c.deadmanTimeoutSeconds {
            return .deadman(secondsSinceKeepAlive: Double(inputs.now - last) / 1e9)
        }
        return nil
    }

    /// A lost-link cause if `block` has missed too many polls (or never arrived after the grace time).
    private func lostLink(_ device: String, _ block: PolledBlock?, _ graceOver: Bool) -> StopCause? {
        let limit = configuration.lostLinkMissedPolls
        if let block {
            return block.consecutiveFailures >= limit ? .lostLink(device: device, missedPolls: block.consecutiveFailures) : nil
        }
        return graceOver ? .lostLink(device: device, missedPolls: limit) : nil
    }

    /// Latches a stop: cuts power (immediate causes) or decelerates, and ends motion commands.
    private func trip(_ cause: StopCause, _ inputs: Inputs) {
        guard stopCause == nil || cause == .softwareEstop && stopCause != .softwareEstop else { return }
        stopCause = cause
        if cause.isImmediate { softwareEstopRequested = true }
        haltAxes()
        if chassis.isBusy { mailbox.update(chassis.commandId, .failed, problem: .stopped(cause)) }
        if lift.isBusy { mailbox.update(lift.commandId, .failed, problem: .stopped(cause)) }
        chassis.phase = .idle
        lift.phase = .idle
        if measurement.active {
            mailbox.update(measurement.commandId, .failed, problem: .stopped(cause))
            measurement.active = false
        }
        if cause.isImmediate { postSafety(now: inputs.now) }
        if case .deadman = cause {
            shared.lock()
            deadmanArmed = false
            shared.unlock()
        }
    }

    /// A stop cause that is still there (button still pressed, link still down).
    private func causeStillPresent(_ inputs: Inputs) -> StopCause? {
        let saved = stopCause
        stopCause = nil
        defer { stopCause = saved }
        guard let cause = detectCause(inputs) else { return nil }
        switch cause {
        case .watchdogExpired, .driveFault: return nil  // cleared by the reset itself
        default: return cause
        }
    }

    // MARK: Reset

    /// How long a reset may take, from the command to the firmware's latch clearing.
    private static let resetTimeoutNanoseconds: UInt64 = 2_000_000_000

    private func advanceReset(_ inputs: Inputs) {
        guard reset.active else { return }
        // A write that fails after its retries is not sent again, so a reset waiting for it
        // would hang (holding its pulse high and its drive-fault checks off): past the
        // timeout the reset fails instead, and the officer can try again.
        let overdue = inputs.now &- reset.startedAt > Self.resetTimeoutNanoseconds
        // Each edge must reach the wire before the next level is posted. Only this reset's
        // own posts count: a write that failed before it (and is never sent again) must not
        // hold it, which is how a lost set-point write once made every later reset fail.
        let slotStatus = bus.status(of: safetySlot)
        let chassisSlot = bus.status(of: chassis.slot)
        let liftSlot = bus.status(of: lift.slot)
        if chassisSlot.failed(reset.chassisPosted) || liftSlot.failed(reset.liftPosted) {
            // The drives' edges are posted once per step: start the pulse again. (The safety
            // block is posted again by every watchdog refresh, with the same levels.)
            reset.step = 0
            reset.chassisPosted = 0
            reset.liftPosted = 0
        }
        // The detector's edge counts only while the detector answers, and a failed write of
        // it does not hold the reset up: a latch left set shows at the next measurement.
        let detectorLinked = (inputs.detectorBlock?.consecutiveFailures ?? 1) == 0
        let detectorSlot = bus.status(of: detectorControlSlot)
        let detectorDone = !detectorLinked || detectorSlot.landed(reset.detectorPosted) || detectorSlot.failed(reset.detectorPosted)
        guard slotStatus.landed(reset.waitingFor), chassisSlot.landed(reset.chassisPosted), liftSlot.landed(reset.liftPosted),
              detectorDone else {
            if overdue { finishReset(ok: false, inputs, writesPending: true) }
            return
        }
        switch reset.step {
        case 0:
            // Open edges: software e-stop off, reset low, fault-reset low, clearOverload low
            // (so the next step is a rising edge even if an earlier reset left it high).
            reset.pulse = false
            reset.waitingFor = postSafety(now: inputs.now)
            chassis.postIdle(bus, controlword: [])
            lift.postIdle(bus, controlword: [])
            reset.noteDrivePosts(chassis.postedSequence, lift.postedSequence)
            postDetectorEdge([.highVoltageOn], linked: detectorLinked)
            reset.step = 1
        case 1:
            reset.pulse = true
            reset.waitingFor = postSafety(now: inputs.now)
            chassis.postIdle(bus, controlword: .faultReset)
            lift.postIdle(bus, controlword: .faultReset)
            reset.noteDrivePosts(chassis.postedSequence, lift.postedSequence)
            // A rising edge of clearOverload clears the detector's overload latch (if the rate is back in range).
            postDetectorEdge([.highVoltageOn, .clearOverload], linked: detectorLinked)
            reset.step = 2
        case 2:
            reset.pulse = false
            reset.waitingFor = postSafety(now: inputs.now)
            chassis.postIdle(bus, controlword: [])
            lift.postIdle(bus, controlword: [])
            reset.noteDrivePosts(chassis.postedSequence, lift.postedSequence)
            postDetectorEdge([.highVoltageOn], linked: detectorLinked)
            reset.step = 3
            reset.checkAfter = slotStatus.sentAtNanoseconds
        default:
            guard let s = inputs.safety, let sb = inputs.safetyBlock, sb.sampledAtNanoseconds > reset.checkAfter &+ 30_000_000 else {
                if overdue { finishReset(ok: false, inputs) }
                return
            }
            let drivesOK = inputs.chassis?.driveState != .fault && inputs.lift?.driveState != .fault
            if !s.flags.contains(.estopLatched) && drivesOK {
                finishReset(ok: true, inputs)
            } else if overdue {
                finishReset(ok: false, inputs)
            }
        }
    }

    /// Posts one level of the detector's clearOverload pulse; not to a detector that is not
    /// answering, where each write would hold the bus for a response timeout.
    private func postDetectorEdge(_ control: DetectorCommand.Control, linked: Bool) {
        guard linked else { return }
        reset.detectorPosted = postDetectorControl(control)
    }

    private func finishReset(ok: Bool, _ inputs: Inputs, writesPending: Bool = false) {
        reset.active = false
        if ok {
            stopCause = nil
            mailbox.update(reset.commandId, .done)
        } else if let cause = detectCause(inputs) {
            mailbox.update(reset.commandId, .failed, problem: .causeStillPresent(cause))
        } else if writesPending {
            mailbox.update(reset.commandId, .failed, problem: .busError(
                "the reset's writes did not reach the firmware within \(Self.resetTimeoutNanoseconds / 1_000_000_000) s; check the link and reset again"))
        } else {
            mailbox.update(reset.commandId, .failed, problem: .causeStillPresent(stopCause ?? .watchdogExpired))
        }
    }

    // MARK: Measurement

    private func advanceMeasurement(_ inputs: Inputs) {
        guard measurement.active else { return }
        guard let block = inputs.detectorBlock, block.consecutiveFailures < configuration.lostLinkMissedPolls,
              let d = inputs.detector, let info = detectorInfo else {
            mailbox.update(measurement.commandId, .failed, problem: .deviceUnavailable(device: "detector"))
            measurement.active = false
            return
        }
        guard block.sequence > measurement.lastSequence else { return }
        measurement.lastSequence = block.sequence
        if !d.flags.contains(.dataValid) || d.flags.contains(.fault) {
            mailbox.update(measurement.commandId, .failed, problem: .deviceUnavailable(device: "detector"))
            measurement.active = false
            return
        }
        guard measurement.hasStart else {
            measurement.start(d)
            return
        }
        // Counters that go backwards mean the detector restarted during the dwell: the
        // difference would be garbage, so the reading is refused and taken again.
        if d.counts < measurement.latest.counts || d.timeBaseMilliseconds < measurement.latest.timeBaseMilliseconds {
            mailbox.update(measurement.commandId, .failed, problem: .deviceUnavailable(device: "detector (restarted during the measurement)"))
            measurement.active = false
            return
        }
        measurement.latest = d
        measurement.instrumentSum += d.doseRateMicrosievertsPerHour
        measurement.instrumentSamples += 1
        let (counts, ms) = d.countsSince(measurement.first)
        guard ms >= measurement.dwellMilliseconds else { return }
        let seconds = Double(ms) / 1000
        let m = Double(counts) / seconds
        let tau = configuration.detectorDeadTimeSeconds
        let correction = max(1e-9, 1 - m * tau)
        let n = m / correction
        let u = Double(counts).squareRoot() / seconds / (correction * correction)
        let sensitivity = info.sensitivityCountsPerSecondPerMicrosievertPerHour
        let factor = info.calibrationFactor
        let reading = Reading(
            counts: counts, seconds: seconds, countRatePerSecond: n, countRateUncertaintyPerSecond: u,
            doseRateMicrosievertsPerHour: n / sensitivity * factor, doseRateUncertaintyMicrosievertsPerHour: u / sensitivity * factor,
            instrumentDoseRateMicrosievertsPerHour: measurement.instrumentSum / Double(max(1, measurement.instrumentSamples)),
            overload: d.flags.contains(.overload))
        mailbox.update(measurement.commandId, .done, reading: reading)
        measurement.active = false
    }

    // MARK: Watchdog and safety outputs

    private func refreshWatchdog(now: UInt64) {
        let period = UInt64(configuration.watchdogRefreshMilliseconds) * 1_000_000
        if now &- lastRefreshNanoseconds >= period {
            postSafety(now: now)
        }
    }

    /// Posts the safety block: a fresh watchdog token, the timeout, and the outputs the
    /// loop's state calls for. Every post refreshes the watchdog.
    @discardableResult
    private func postSafety(now: UInt64) -> UInt64 {
        watchdogToken &+= 1
        lastRefreshNanoseconds = now
        var outputs: SafetyCommand.Outputs = []
        if softwareEstopRequested { outputs.insert(.softwareEstop) }
        if reset.active && reset.pulse { outputs.insert(.estopReset) }
        if chassis.isBusy || lift.isBusy { outputs.insert(.beacon) }
        let token = watchdogToken
        let timeout = configuration.watchdogTimeoutMilliseconds
        return bus.post(safetySlot) { buffer in
            buffer[0] = token
            buffer[1] = timeout
            buffer[2] = outputs.rawValue
            return 3
        }
    }

    private func postDetectorControl(_ control: DetectorCommand.Control) -> UInt64 {
        bus.post(detectorControlSlot) { buffer in
            buffer[0] = control.rawValue
            return 1
        }
    }

    // MARK: Publishing

    private func publish(_ inputs: Inputs) {
        var s = RobotSnapshot()
        s.tick = tick
        if let c = inputs.chassis {
            s.xMetres = c.positionXMetres
            s.yMetres = c.positionYMetres
            s.headingDegrees = c.headingDegrees
            s.speedMetresPerSecond = Double(c.velocityMillimetresPerSecond) / 1000
            s.chassisState = c.driveState
            s.chassisMoving = c.flags.contains(.moving)
        }
        if let l = inputs.lift {
            s.liftHeightMetres = l.heightMetres
            s.liftState = l.driveState
            s.liftHomed = l.flags.contains(.homed)
            s.liftMoving = l.flags.contains(.moving)
        }
        if let d = inputs.detector, let block = inputs.detectorBlock {
            s.instrumentDoseRateMicrosievertsPerHour = d.doseRateMicrosievertsPerHour
            s.detectorOverload = d.flags.contains(.overload)
            rateWindow.add(d, sequence: block.sequence)
            if let (counts, ms) = rateWindow.span(atLeastMilliseconds: 1000), ms > 0, let info = detectorInfo {
                let seconds = Double(ms) / 1000
                let m = Double(counts) / seconds
                let correction = max(1e-9, 1 - m * configuration.detectorDeadTimeSeconds)
                s.countRatePerSecond = m / correction
                s.countRateUncertaintyPerSecond = Double(counts).squareRoot() / seconds / (correction * correction)
                let scale = info.calibrationFactor / info.sensitivityCountsPerSecondPerMicrosievertPerHour
                s.doseRateMicrosievertsPerHour = s.countRatePerSecond * scale
                s.doseRateUncertaintyMicrosievertsPerHour = s.countRateUncertaintyPerSecond * scale
            }
        }
        if let safety = inputs.safety {
            s.motionPowerOn = safety.flags.contains(.motionPowerOn)
            s.estopButton = safety.flags.contains(.estopButton)
        }
        s.detectorAvailable = (inputs.detectorBlock?.consecutiveFailures ?? 1) == 0
        s.linkUp = ((inputs.safetyBlock?.consecutiveFailures ?? 1) == 0, (inputs.chassisBlock?.consecutiveFailures ?? 1) == 0,
                    (inputs.liftBlock?.consecutiveFailures ?? 1) == 0, s.detectorAvailable)
        s.lifecycle = (
            lifecycle(inputs.safetyBlock, operating: inputs.safety?.flags.contains(.motionPowerOn) == true, fault: false),
            lifecycle(inputs.chassisBlock, operating: inputs.chassis?.driveState == .operationEnabled,
                      fault: inputs.chassis?.driveState == .fault),
            lifecycle(inputs.liftBlock, operating: inputs.lift?.driveState == .operationEnabled,
                      fault: inputs.lift?.driveState == .fault),
            lifecycle(inputs.detectorBlock, operating: inputs.detector?.flags.contains(.dataValid) == true,
                      fault: inputs.detector?.flags.contains(.fault) == true))
        s.stopCause = stopCause
        s.estopRequestsServed = estopRequestsServed
        s.estopServedAtTick = estopServedAtTick
        s.haltRequestsServed = haltRequestsServed
        s.haltServedAtTick = haltServedAtTick
        shared.lock()
        s.deadmanArmed = deadmanArmed
        s.overruns = overruns
        snapshotValue = s
        shared.unlock()
    }
}

extension ControlLoop {
    func lifecycle(_ block: PolledBlock?, operating: Bool, fault: Bool) -> DeviceLifecycle {
        guard let block, block.sequence > 0 else { return .unconfigured }
        if block.consecutiveFailures >= configuration.lostLinkMissedPolls || fault { return .error }
        return operating ? .active : .inactive
    }
}

/// The last 64 detector samples, for a live count rate over about a second.
struct RateWindow {
    private var counts = [UInt32](repeating: 0, count: 64)
    private var times = [UInt32](repeating: 0, count: 64)
    private var next = 0
    private var filled = 0
    private var lastSequence: UInt64 = 0

    mutating func add(_ sample: DetectorStatus, sequence: UInt64) {
        guard sequence != lastSequence else { return }
        lastSequence = sequence
        // A reboot resets the time base: start the window again.
        if filled > 0 {
            let previous = (next + 63) % 64
            if sample.timeBaseMilliseconds < times[previous] { filled = 0 }
        }
        counts[next] = sample.counts
        times[next] = sample.timeBaseMilliseconds
        next = (next + 1) % 64
        filled = min(filled + 1, 64)
    }

    /// Counts and milliseconds from the newest sample back to the first one at least
    /// `ms` older (or the oldest kept).
    func span(atLeastMilliseconds ms: UInt32) -> (UInt32, UInt32)? {
        guard filled >= 2 else { return nil }
        let newest = (next + 63) % 64
        var index = newest
        for _ in 1..<filled {
            index = (index + 63) % 64
            if times[newest] &- times[index] >= ms { break }
        }
        return (counts[newest] &- counts[index], times[newest] &- times[index])
    }
}

/// Progress of the reset sequence: three safety and fault-reset writes, then a check.
struct ResetSequence {
    var active = false
    var commandId: UInt64 = 0
    var step = 0
    var pulse = false
    var waitingFor: UInt64 = 0
    var detectorPosted: UInt64 = 0
    /// This reset's latest drive posts (0: none yet).
    var chassisPosted: UInt64 = 0
    var liftPosted: UInt64 = 0
    var startedAt: UInt64 = 0
    var checkAfter: UInt64 = 0

    mutating func noteDrivePosts(_ chassis: UInt64, _ lift: UInt64) {
        chassisPosted = chassis
        liftPosted = lift
    }

    mutating func begin(commandId: UInt64, now: UInt64) {
        self = ResetSequence()
        active = true
        self.commandId = commandId
        startedAt = now
    }
}

/// A dwell in progress: the first detector sample after the start, and the running sums.
struct MeasurementProgress {
    var active = false
    var commandId: UInt64 = 0
    var dwellMilliseconds: UInt32 = 0
    var lastSequence: UInt64 = 0
    var hasStart = false
    var first = DetectorStatus(flags: [], doseRateNanosievertsPerHour: 0, counts: 0, timeBaseMilliseconds: 0, faultCode: 0)
    /// The newest sample of the dwell, to see the counters go backwards (a detector restart).
    var latest = DetectorStatus(flags: [], doseRateNanosievertsPerHour: 0, counts: 0, timeBaseMilliseconds: 0, faultCode: 0)
    var instrumentSum = 0.0
    var instrumentSamples = 0

    mutating func begin(commandId: UInt64, dwellMilliseconds: UInt32, afterSequence: UInt64) {
        self = MeasurementProgress()
        active = true
        self.commandId = commandId
        self.dwellMilliseconds = dwellMilliseconds
        lastSequence = afterSequence
    }

    mutating func start(_ sample: DetectorStatus) {
        first = sample
        latest = sample
        hasStart = true
    }
}

/// A flag set once from another thread.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
