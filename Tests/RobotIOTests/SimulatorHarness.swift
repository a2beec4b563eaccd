import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator

/// A simulator on a fresh pty and a bus connected to it, for one test.
final class SimulatorHarness: @unchecked Sendable {
    let simulator: Simulator
    let bus: ModbusBus

    init(responseTimeoutMilliseconds: Int = 100, maxRetries: Int = 0, lineTiming: LineTiming = LineTiming(),
         linkPath: String? = nil, realTimePhysics: Bool = true, model: FirmwareModel = FirmwareModel()) throws {
        simulator = try Simulator(model: model, options: Simulator.Options(
            linkPath: linkPath, lineTiming: lineTiming, realTimePhysics: realTimePhysics))
        try simulator.start()
        bus = ModbusBus(configuration: BusConfiguration(
            endpoint: .rtu(.path(simulator.serialPath), responseTimeoutMilliseconds: responseTimeoutMilliseconds),
            maxRetries: maxRetries, reconnectIntervalMilliseconds: 50))
        bus.start()
    }

    deinit {
        bus.stop()
        simulator.stop()
    }

    var faults: FaultInjector { simulator.faults }
    var model: FirmwareModel { simulator.model }

    /// Expects `body` to throw a `BusError` and returns it.
    func expectBusError(_ body: () async throws -> Void) async -> BusError? {
        do {
            try await body()
            return nil
        } catch {
            return error as? BusError
        }
    }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass.
func eventually(within seconds: Double, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return await condition()
}

/// Collects values from completion handlers on other threads.
final class Recorder<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ item: T) { lock.lock(); items.append(item); lock.unlock() }
    var values: [T] { lock.lock(); defer { lock.unlock() }; return items }
}
