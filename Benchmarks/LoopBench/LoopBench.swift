import BenchmarkSupport
import FirmwareProtocol
import Foundation
import MallocCounter
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting

/// Control-loop timing against cyclictest, allocations per tick, and e-stop latency.
///
///     swift build -c release --product LoopBench
///     .build/release/LoopBench [--seconds 60] [--rates 100,500] [--estops 100]
///                              [--estop-lines 115200:1000,19200:10000]
///
/// For each rate: the loop runs against the in-process simulator over a pty for
/// `--seconds` while the robot walks back and forth and measures, and `cyclictest`
/// (Debian rt-tests) runs for the same time, at the same interval and priority, at
/// the same time, so both see the same load. Percentiles of both, and the ratio of p99s.
@main
struct LoopBench {
    static func main() async throws {
        let arguments = BenchmarkArguments()
        let seconds = Double(arguments.string("--seconds", "60")) ?? 60
        let rates = arguments.string("--rates", "100,500").split(separator: ",").compactMap { Double($0) }
        let estops = Int(arguments.string("--estops", "100")) ?? 100
        print("LoopBench: \(Int(seconds)) s per rate, rates \(rates.map { Int($0) }), \(estops) e-stops; \(ProcessInfo.processInfo.processorCount) CPUs")
        for rate in rates {
            try await benchmark(rate: rate, seconds: seconds)
        }
        try await estopLatency(times: estops)
        // The e-stop on real line timings (baud:turnaround µs), each with the poll schedule
        // robotd fits to that line (`LineBudget.fitted`).
        for line in arguments.string("--estop-lines", "").split(separator: ",") {
            let parts = line.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 2 else { continue }
            try await estopLatency(times: estops, baud: parts[0], turnaroundMicroseconds: parts[1])
        }
    }

    final class Tally: @unchecked Sendable {
        var ticks: UInt64 = 0
        var allocations: UInt64 = 0
        var worst: UInt64 = 0
        private var atBegin: UInt64 = 0
        var counting = false

        func observe(_ phase: ControlLoop.TickPhase) {
            let now = UInt64(malloc_counter_thread_allocations())
            switch phase {
            case .begin:
                atBegin = now
            case .end:
                guard counting else { return }
                let n = now - atBegin
                ticks += 1
                allocations += n
                worst = max(worst, n)
            }
        }
    }

    struct Rig {
        let simulator: Simulator
        let bus: ModbusBus
        let loop: ControlLoop
        let robot: PtyRobot
    }

    static func makeRig(rate: Double, line: (baud: Int, turnaroundMicroseconds: Int)? = nil,
                        tickObserver: (@Sendable (ControlLoop.TickPhase) -> Void)? = nil) async throws -> Rig {
        var scenario = Scenario(name: "bench yard")
        scenario.startLiftMetres = 0.36
        var configuration = ControlConfiguration()
        configuration.loopRateHertz = rate
        if let line {
            scenario.lineTiming = LineTiming(enabled: true, baud: line.baud, turnaroundMicroseconds: line.turnaroundMicroseconds)
            let endpoint = BusEndpoint.rtu(.path("/dev/null"), baud: line.baud, responseTimeoutMilliseconds: 100)
            configuration = LineBudget.fitted(endpoint: endpoint, configuration: configuration,
                                              turnaroundMicroseconds: line.turnaroundMicroseconds) ?? configuration
            print("  line \(line.baud) baud, \(line.turnaroundMicroseconds) µs turnaround: polls \(LineBudget.schedule(configuration))")
        }
        let robot = try await PtyRobot(scenario: scenario, configuration: configuration, tickObserver: tickObserver)
        return Rig(simulator: robot.simulator, bus: robot.bus, loop: robot.loop, robot: robot)
    }

    static func benchmark(rate: Double, seconds: Double) async throws {
        let tally = Tally()
        let rig = try await makeRig(rate: rate) { tally.observe($0) }
        let (simulator, bus, loop) = (rig.simulator, rig.bus, rig.loop)
        if !loop.realtimeNotes.isEmpty { print("  note: " + loop.realtimeNotes.joined(separator: "; ")) }
        _ = await loop.run(.homeLift, timeout: 30)
        // Keep the robot busy: walk back and forth, raise and lower, measure.
        let worker = Task {
            var direction = 1.0
            while !Task.isCancelled {
                _ = await loop.run(.walk(metres: 0.5 * direction, speedMetresPerSecond: nil), timeout: 10)
                _ = await loop.run(.lift(heightMetres: direction > 0 ? 1.0 : 0.5), timeout: 10)
                _ = await loop.run(.measure(seconds: 1), timeout: 5)
                direction = -direction
            }
        }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        // cyclictest runs at the same time, at the same interval and priority, so both
        // see exactly the same load: the simulator, the bus, the robot moving, and each other.
        let interval = Int((1e6 / rate).rounded())
        let cyclicTask = Task.detached { runCyclictest(intervalMicroseconds: interval, seconds: seconds) }
        loop.resetStatistics()
        tally.counting = true
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        tally.counting = false
        let stats = loop.statistics()
        let cyclic = await cyclicTask.value
        worker.cancel()
        _ = await worker.value
        _ = await loop.run(.stop, timeout: 2)
        loop.stop()
        bus.stop()
        simulator.stop()

        print("\n== \(Int(rate)) Hz, \(Int(seconds)) s")
        print(String(format: "  our loop   wake latency p50 %5d  p99 %5d  p99.9 %5d  max %6d µs   (%llu ticks, %llu overruns; tick p99 %d µs)",
                     stats.wakeLatencyP50, stats.wakeLatencyP99, stats.wakeLatencyP999, stats.wakeLatencyMax,
                     stats.ticks, stats.overruns, stats.tickDurationP99))
        if let c = cyclic {
            print(String(format: "  cyclictest wake latency p50 %5d  p99 %5d  p99.9 %5d  max %6d µs   (%d samples)",
                         c.p50, c.p99, c.p999, c.max, c.samples))
            let ratio = Double(stats.wakeLatencyP99) / Double(max(1, c.p99))
            print(String(format: "  ratio our p99 / cyclictest p99 = %.2f (target <= 1.5)", ratio))
        } else {
            print("  cyclictest not available (apt-get install rt-tests)")
        }
        let perTick = tally.ticks == 0 ? 0 : Double(tally.allocations) / Double(tally.ticks)
        print(String(format: "  allocations per tick: %.4f mean, %llu worst, over %llu ticks (target 0)", perTick, tally.worst, tally.ticks))
    }

    struct Cyclic {
        var p50 = 0, p99 = 0, p999 = 0, max = 0, samples = 0
    }

    static func runCyclictest(intervalMicroseconds: Int, seconds: Double) -> Cyclic? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/cyclictest")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/cyclictest") else { return nil }
        process.arguments = ["-m", "-p", "80", "-t", "1", "-q", "-i", "\(intervalMicroseconds)",
                             "-h", "20000", "-D", "\(Int(seconds))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = Pipe()
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var buckets: [(Int, Int)] = []
        var overflows = 0
        var maximum = 0
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("# Histogram Overflows:") {
                overflows = Int(line.split(separator: " ").last.map(String.init) ?? "0") ?? 0
            } else if line.hasPrefix("# Max Latencies:") {
                maximum = Int(line.split(separator: " ").last.map(String.init) ?? "0") ?? 0
            } else if !line.hasPrefix("#") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if parts.count >= 2, let us = Int(parts[0]), let n = Int(parts[1]), n > 0 { buckets.append((us, n)) }
            }
        }
        let total = buckets.reduce(0) { $0 + $1.1 } + overflows
        guard total > 0 else { return nil }
        func percentile(_ p: Double) -> Int {
            let rank = Int((p / 100 * Double(total)).rounded(.up))
            var seen = 0
            for (us, n) in buckets {
                seen += n
                if seen >= rank { return us }
            }
            return maximum
        }
        return Cyclic(p50: percentile(50), p99: percentile(99), p999: percentile(99.9), max: maximum, samples: total)
    }

    /// Time from `submit(.estop)` to the software e-stop write arriving at the firmware.
    static func estopLatency(times: Int, baud: Int? = nil, turnaroundMicroseconds: Int = 0) async throws {
        let rig = try await makeRig(rate: 100, line: baud.map { ($0, turnaroundMicroseconds) })
        defer {
            rig.loop.stop()
            rig.bus.stop()
            rig.simulator.stop()
        }
        var samples: [Double] = []
        for _ in 0..<times {
            let before = rig.simulator.model.softwareEstopArrivalNanoseconds
            // Press at a random phase of the tick.
            try await Task.sleep(nanoseconds: UInt64.random(in: 0...10_000_000))
            let pressed = MonotonicClock.nanoseconds()
            rig.loop.submit(.estop)
            while rig.simulator.model.softwareEstopArrivalNanoseconds == before {
                try await Task.sleep(nanoseconds: 200_000)
                if MonotonicClock.nanoseconds() - pressed > 1_000_000_000 { break }
            }
            let arrived = rig.simulator.model.softwareEstopArrivalNanoseconds
            if arrived > pressed { samples.append(Double(arrived - pressed) / 1e6) }
            _ = await rig.loop.run(.releaseEstop, timeout: 5)
        }
        samples.sort()
        guard !samples.isEmpty else {
            print("\n== e-stop latency: no samples")
            return
        }
        func p(_ q: Double) -> Double { samples[min(samples.count - 1, Int(q / 100 * Double(samples.count)))] }
        let where_ = baud.map { " on a \($0)-baud line, \(turnaroundMicroseconds) µs turnaround" } ?? " (pty, no line timing)"
        print("\n== e-stop latency at 100 Hz\(where_), API call to the write arriving at the firmware (\(samples.count) presses)")
        print(String(format: "  p50 %.2f ms  p99 %.2f ms  max %.2f ms  (bound: one tick 10 ms + one transaction)", p(50), p(99), samples.last ?? 0))
    }
}
