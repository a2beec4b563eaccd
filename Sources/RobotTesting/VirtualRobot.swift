import FirmwareProtocol
import Foundation
import Inspection
import RobotControl
import RobotIO
import RobotSimulator
import Synchronization

extension FirmwareModel: RegisterDevice {}

/// The whole robot in virtual time: the simulator's firmware model, an in-memory bus
/// and the real `ControlLoop`, advanced together one loop period at a time.
///
/// Nothing waits on a wall clock: a 45-minute scan runs in seconds, and for the same
/// seed and the same commands the readings are the same, bit for bit. Two ways to drive
/// it:
/// - by hand, from a test: `step()`, `run(seconds:)`, `run(until:)`;
/// - free-running (`startRunning()`), for code that drives the loop from its own tasks
///   (the scan executor, the command server): time then moves while the loop has work
///   or someone sleeps on `clock`, and holds still while both wait for each other, so
///   where each command lands in virtual time does not depend on the machine's load.
///
/// Timed device faults of the scenario are injected when virtual time reaches them.
/// Bus faults (CRC errors, silent units) need a real line: they are the HIL tier's.
public final class VirtualRobot: RobotRig, @unchecked Sendable {
    public let scenario: Scenario
    public let model: FirmwareModel
    public let clock: VirtualClock
    public let bus: SteppedBus
    public let loop: ControlLoop
    public let periodNanoseconds: UInt64
    private let modelStepsPerTick: Int
    private var nextTimedFault = 0
    private let stepLock = NSLock()
    private let stopRunning = Atomic(false)
    private var runner: Thread?
    private let runnerExited = DispatchSemaphore(value: 0)
    /// Called after every step, on the stepping thread, with the robot held still: for
    /// campaigns that sample the simulator's truth all along (the probe's stand-off while
    /// it drives a row). Set it before the robot runs.
    public var afterEachStep: (@Sendable () -> Void)?

    /// Builds the robot and starts the loop (identity checks, polls), without a thread.
    public init(scenario: Scenario, configuration: ControlConfiguration = ControlConfiguration()) async throws {
        self.scenario = scenario
        model = scenario.makeModel()
        clock = VirtualClock()
        bus = SteppedBus(device: model, clock: clock)
        loop = ControlLoop(bus: bus, configuration: configuration, clock: clock)
        periodNanoseconds = configuration.tickNanoseconds
        let stepNanoseconds = UInt64((FirmwareModel.stepSeconds * 1e9).rounded())
        guard periodNanoseconds % stepNanoseconds == 0 else {
            throw VirtualRobotError.periodNotAMultipleOfTheModelStep(periodNanoseconds: periodNanoseconds, stepNanoseconds: stepNanoseconds)
        }
        modelStepsPerTick = Int(periodNanoseconds / stepNanoseconds)
        try await loop.startStepped()
        bus.pump()
    }

    deinit {
        stopFreeRunning()
        clock.wakeAll()
    }

    /// Waits in virtual time: for a `ScanExecutor` driven by a free-running robot.
    public var sleeper: Sleeper { Sleeper(virtualClock: clock) }

    /// Virtual seconds since the robot was built.
    public var seconds: Double { model.simulatedSeconds }

    /// One loop period: the world moves, the bus carries the last tick's writes and the
    /// due polls, then the loop ticks.
    public func step() {
        stepLock.lock()
        defer { stepLock.unlock() }
        for _ in 0..<modelStepsPerTick {
            model.step()
            applyDueFaults()
        }
        clock.advance(byNanoseconds: periodNanoseconds)
        bus.pump()
        loop.step()
        afterEachStep?()
        clock.wakeDueSleepers()
    }

    public func run(seconds: Double) {
        let ticks = Int((seconds * 1e9 / Double(periodNanoseconds)).rounded())
        for _ in 0..<ticks { step() }
    }

    /// Steps until `condition` holds (checked after every tick), up to `seconds` of
    /// virtual time. Returns whether it held.
    @discardableResult
    public func run(until condition: () -> Bool, within seconds: Double) -> Bool {
        let ticks = Int((seconds * 1e9 / Double(periodNanoseconds)).rounded())
        for _ in 0..<ticks {
            if condition() { return true }
            step()
        }
        return condition()
    }

    /// Submits `command` and steps until its feedback is final (or `within` virtual seconds).
    public func perform(_ command: RobotCommand, within seconds: Double = 120) -> CommandFeedback? {
        let id = loop.submit(command, expiresIn: 5)
        run(until: { loop.feedback(id)?.state.isFinal == true }, within: seconds)
        return loop.feedback(id)
    }

    // MARK: Free-running

    /// Steps on a thread of its own. Time moves while the loop has work or a task sleeps
    /// on `clock`; otherwise it holds still for up to `idleWallSeconds` of wall time
    /// (someone is about to ask for something), then moves anyway. `speedLimit` caps
    /// virtual time at that many times wall time (nil: as fast as the machine steps),
    /// for clients that keep real-time keep-alives.
    ///
    /// The stepping thread holds the robot: call `stopFreeRunning()` when done (a test
    /// rig's `deinit` does), or the robot and its thread outlive the test.
    public func startRunning(speedLimit: Double? = nil, idleWallSeconds: Double = 0.2) {
        guard runner == nil else { return }
        stopRunning.store(false, ordering: .sequentiallyConsistent)
        let thread = Thread { [self] in
            self.freeRun(speedLimit: speedLimit, idleWallNanoseconds: UInt64(idleWallSeconds * 1e9))
        }
        thread.name = "virtual-robot"
        runner = thread
        thread.start()
    }

    public func stopFreeRunning() {
        guard runner != nil else { return }
        stopRunning.store(true, ordering: .sequentiallyConsistent)
        runnerExited.wait()
        runner = nil
    }

    private func freeRun(speedLimit: Double?, idleWallNanoseconds: UInt64) {
        defer { runnerExited.signal() }
        var idleSince: UInt64 = 0
        var paceWallStart = MonotonicClock.nanoseconds()
        var paceVirtualStart = clock.nanoseconds()
        while !stopRunning.load(ordering: .sequentiallyConsistent) {
            let wall = MonotonicClock.nanoseconds()
            let wanted = !loop.isIdle || clock.hasSleepers
            if !wanted {
                if idleSince == 0 { idleSince = wall }
                if wall &- idleSince < idleWallNanoseconds {
                    usleep(50)
                    continue
                }
            }
            idleSince = 0
            if let speedLimit {
                let virtualElapsed = Double(clock.nanoseconds() &- paceVirtualStart)
                let wallElapsed = Double(wall &- paceWallStart)
                if virtualElapsed > wallElapsed * speedLimit {
                    usleep(200)
                    continue
                }
                if wallElapsed > 5e9 {
                    paceWallStart = wall
                    paceVirtualStart = clock.nanoseconds()
                }
            }
            step()
        }
    }

    private func applyDueFaults() {
        let faults = scenario.faults
        guard nextTimedFault < faults.count else { return }
        let now = model.simulatedSeconds
        while nextTimedFault < faults.count && faults[nextTimedFault].atSeconds <= now {
            if case let .device(fault) = faults[nextTimedFault].kind { model.inject(fault) }
            nextTimedFault += 1
        }
    }
}

public enum VirtualRobotError: Error, CustomStringConvertible {
    case periodNotAMultipleOfTheModelStep(periodNanoseconds: UInt64, stepNanoseconds: UInt64)

    public var description: String {
        switch self {
        case let .periodNotAMultipleOfTheModelStep(period, step):
            return "the loop period (\(period) ns) must be a whole number of the simulator's physics steps (\(step) ns): choose a loop rate such as 100 or 200 Hz"
        }
    }
}
