import FirmwareProtocol
import Foundation
import Inspection
import RobotControl
import RobotIO
import RobotSimulator

/// The robot in real time over a real link: the simulator on a fresh pty (its physics on
/// its own thread, at the scenario's time scale), a libmodbus `ModbusBus` to it, and the
/// `ControlLoop` on its real-time thread. What the HIL tier, the benchmarks and the fault
/// soak run; `VirtualRobot` is the same robot in virtual time.
public final class PtyRobot: RobotRig, @unchecked Sendable {
    public let simulator: Simulator
    public let bus: ModbusBus
    public let loop: ControlLoop
    public let sleeper: Sleeper
    private let stopped = NSLock()
    private var isStopped = false

    /// Starts everything; the loop is ticking when this returns. With a scaled simulator
    /// the firmware's watchdog runs in its time: `configuration`'s watchdog period is
    /// stretched by the time scale (up to 10 s) unless `scaleWatchdog` is false.
    public init(scenario: Scenario, configuration: ControlConfiguration = ControlConfiguration(),
                responseTimeoutMilliseconds: Int = 100, maxRetries: Int = 1, reconnectIntervalMilliseconds: Int = 50,
                scaleWatchdog: Bool = true, tickObserver: (@Sendable (ControlLoop.TickPhase) -> Void)? = nil) async throws {
        simulator = try Simulator(scenario: scenario)
        try simulator.start()
        bus = ModbusBus(configuration: BusConfiguration(
            endpoint: .rtu(.path(simulator.serialPath), responseTimeoutMilliseconds: responseTimeoutMilliseconds),
            maxRetries: maxRetries, reconnectIntervalMilliseconds: reconnectIntervalMilliseconds))
        var control = configuration
        if scaleWatchdog && scenario.timeScale > 1 {
            control.watchdogTimeoutMilliseconds = UInt16(min(10_000, Double(configuration.watchdogTimeoutMilliseconds) * scenario.timeScale))
        }
        loop = ControlLoop(bus: bus, configuration: control)
        loop.tickObserver = tickObserver
        sleeper = Sleeper(timeScale: scenario.timeScale)
        do {
            try await loop.start()
        } catch {
            bus.stop()
            simulator.stop()
            throw error
        }
    }

    deinit {
        stop()
    }

    public var model: FirmwareModel { simulator.model }
    public var faults: FaultInjector { simulator.faults }

    /// Stops the loop (after a last halting tick), the bus and the simulator. Idempotent.
    public func stop() {
        stopped.lock()
        defer { stopped.unlock() }
        guard !isStopped else { return }
        isStopped = true
        loop.stop()
        bus.stop()
        simulator.stop()
    }

    /// Waits (in wall time) until `condition` holds, up to `seconds`.
    public func waitFor(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return condition()
    }
}

/// What a test needs of a robot, in real or virtual time: its loop, the simulator's
/// model (the truth), and how the scan executor should wait.
public protocol RobotRig: AnyObject, Sendable {
    var loop: ControlLoop { get }
    var model: FirmwareModel { get }
    var sleeper: Sleeper { get }
}

public struct RobotRigError: Error, CustomStringConvertible {
    public let description: String
}

extension RobotRig {
    /// The simulator's truth (the controller sees only registers).
    public var truth: FirmwareModel.Truth { model.truth() }

    /// The detector's instrument record, as the loop read it at start.
    public func instrument() throws -> InstrumentRecord {
        guard let info = loop.detectorInfo else {
            throw RobotRigError(description: "the loop has not read the detector's instrument record (did it start?)")
        }
        return InstrumentRecord(serialNumber: info.serialNumber,
                                sensitivityCountsPerSecondPerMicrosievertPerHour: info.sensitivityCountsPerSecondPerMicrosievertPerHour,
                                calibrationFactor: info.calibrationFactor, calibrationDate: info.calibrationDate,
                                calibrationExpiry: info.calibrationExpiry)
    }

    /// A scan executor for `plan` on this robot, waiting in the robot's time.
    public func executor(plan: ScanPlan, record: ScanRecord = InMemoryScanRecord()) throws -> ScanExecutor {
        ScanExecutor(loop: loop, plan: plan, instrument: try instrument(), record: record, sleeper: sleeper)
    }
}
