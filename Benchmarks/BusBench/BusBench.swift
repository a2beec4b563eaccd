import BenchmarkSupport
import CModbusBaseline
import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator

/// Transactions per second of our bus layer against a plain C libmodbus loop, on the
/// same pty and the same simulator server, in alternating rounds so both see the
/// same machine noise. Prints the ratio (target ≥ 0.9).
///
///     swift run -c release BusBench [--rounds 5] [--transactions 20000] [--baseline-on-main]
@main
struct BusBench {
    static func main() async throws {
        let arguments = BenchmarkArguments()
        let rounds = arguments.int("--rounds", 5)
        let transactions = arguments.int("--transactions", 20_000)
        // By default the C loop runs on a plain pthread of its own, as the bus runs on its
        // own thread; this flag runs it on the process's main thread instead, which on
        // these machines is faster for reasons we have not pinned down (docs/performance.md).
        let baselineOnMain = arguments.has("--baseline-on-main")

        let simulator = try Simulator(model: FirmwareModel(), options: Simulator.Options(realTimePhysics: false))
        try simulator.start()
        defer { simulator.stop() }
        let path = simulator.serialPath
        let unit = RegisterMap.chassis.unitId
        let block = ChassisStatus.spec

        print("BusBench: \(rounds) rounds x \(transactions) reads of \(block.count) input registers, unit \(unit), pty \(simulator.pty.slavePath)")
        print("round  C libmodbus tx/s  bus submit tx/s  bus poll tx/s  bus perform tx/s")
        var pollRates: [Double] = []
        var cRates: [Double] = []
        var submitRates: [Double] = []
        var performRates: [Double] = []
        for round in 1...rounds {
            let c = baselineOnMain
                ? baseline_read_loop(path, Int32(unit), Int32(block.start), Int32(block.count), Int32(transactions))
                : baseline_read_loop_on_pthread(path, Int32(unit), Int32(block.start), Int32(block.count), Int32(transactions))
            guard c > 0 else {
                print("C baseline failed (\(c))")
                exit(1)
            }
            let submit = try await busSubmitRate(path: path, unit: unit, block: block, transactions: transactions)
            let polled = try await busPollRate(path: path, unit: unit, block: block, seconds: Double(transactions) / max(c, 1))
            let perform = try await busPerformRate(path: path, unit: unit, block: block, transactions: transactions / 4)
            cRates.append(c)
            submitRates.append(submit)
            pollRates.append(polled)
            performRates.append(perform)
            print(String(format: "%5d  %16.0f  %15.0f  %13.0f  %16.0f", round, c, submit, polled, perform))
        }
        let medianC = median(cRates)
        let medianSubmit = median(submitRates)
        let medianPerform = median(performRates)
        let medianPoll = median(pollRates)
        print(String(format: "median %15.0f  %15.0f  %13.0f  %16.0f", medianC, medianSubmit, medianPoll, medianPerform))
        print(String(format: "ratio bus submit / C = %.3f (target >= 0.9)", medianSubmit / medianC))
        print(String(format: "ratio bus poll / C = %.3f (target >= 0.9)", medianPoll / medianC))
        print(String(format: "ratio bus perform (one await per transaction) / C = %.3f", medianPerform / medianC))
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }

    static func makeBus(_ path: String) -> ModbusBus {
        let bus = ModbusBus(configuration: BusConfiguration(endpoint: .rtu(.path(path)), maxRetries: 0))
        bus.start()
        return bus
    }

    /// The control loop's way: queue requests without waiting for each; the bus thread
    /// drains the queue back to back.
    static func busSubmitRate(path: String, unit: UInt8, block: BlockSpec, transactions: Int) async throws -> Double {
        let bus = makeBus(path)
        defer { bus.stop() }
        _ = try await bus.perform(unit: unit, .readInput(address: block.start, count: block.count))
        let finished = DispatchSemaphore(value: 0)
        let failures = Counter()
        let operation = BusOperation.readInput(address: block.start, count: block.count)
        let start = MonotonicClock.nanoseconds()
        for i in 0..<transactions {
            bus.submit(unit: unit, operation, priority: .command) { result in
                if case .failure = result { failures.increment() }
                if i == transactions - 1 { finished.signal() }
            }
        }
        finished.wait()
        let seconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
        guard failures.value == 0 else { throw BenchFailure(description: "\(failures.value) bus transactions failed") }
        return Double(transactions) / seconds
    }

    /// The bus polling one status block back to back on its own thread, as it does for
    /// the control loop; counted by the published sequence number.
    static func busPollRate(path: String, unit: UInt8, block: BlockSpec, seconds: Double) async throws -> Double {
        let bus = makeBus(path)
        defer { bus.stop() }
        _ = try await bus.perform(unit: unit, .readInput(address: block.start, count: block.count))
        bus.addPoll(unit: unit, block: block, periodMilliseconds: 0)
        while (bus.latest(unit: unit, block: block)?.sequence ?? 0) < 10 { usleep(100) }
        let first = bus.latest(unit: unit, block: block)
        let start = MonotonicClock.nanoseconds()
        usleep(UInt32(seconds * 1_000_000))
        let last = bus.latest(unit: unit, block: block)
        let elapsed = Double(MonotonicClock.nanoseconds() - start) / 1e9
        guard let a = first, let b = last, b.consecutiveFailures == 0 else { throw BenchFailure(description: "polling failed") }
        return Double(b.sequence - a.sequence) / elapsed
    }

    /// One `await` per transaction: the latency-bound path an API handler uses.
    static func busPerformRate(path: String, unit: UInt8, block: BlockSpec, transactions: Int) async throws -> Double {
        let bus = makeBus(path)
        defer { bus.stop() }
        let operation = BusOperation.readInput(address: block.start, count: block.count)
        _ = try await bus.perform(unit: unit, operation)
        let start = MonotonicClock.nanoseconds()
        for _ in 0..<transactions {
            _ = try await bus.perform(unit: unit, operation)
        }
        return Double(transactions) / (Double(MonotonicClock.nanoseconds() - start) / 1e9)
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
