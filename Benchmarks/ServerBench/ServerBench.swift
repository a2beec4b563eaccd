import BenchmarkSupport
import CommandClient
import CommandServer
import Foundation
import Histogram
import InspectionStore
import Logging
import ProcessMemory
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting
import Synchronization
import WSClient

/// The command server under load, with the control loop running against the simulator.
///
///     swift build -c release --product ServerBench
///     .build/release/ServerBench [--seconds 30] [--clients 100] [--rate 200] [--estops 100] [--scan]
///
/// With `--scan` (the reliability campaign's load run) a 40 ft default-profile scan runs
/// through the API during both phases, the command load is `POST /api/v1/compute` (a
/// verdict on the readings so far: store reads and statistics, audited), and resident
/// memory is printed at the start and end of the load.
///
/// Phase 1 (quiet): the loop runs with the server up and idle for `--seconds`.
/// Phase 2 (load): `--clients` WebSocket clients take telemetry at 10 Hz and
/// `--rate` command requests per second (POST /api/v1/commands, authenticated, audited,
/// through the loop's mailbox) for the same time. Loop overruns and wake-up latency of
/// the two phases are compared: what the load adds is what the server caused.
/// Then, still under load: HTTP command round trip percentiles, and command-to-wire
/// latency: from sending POST /api/v1/estop to the e-stop write arriving at the firmware,
/// in loop ticks.
@main
struct ServerBench {
    static func main() async throws {
        let arguments = BenchmarkArguments()
        let seconds = Double(arguments.string("--seconds", "30")) ?? 30
        let clients = Int(arguments.string("--clients", "100")) ?? 100
        let rate = Double(arguments.string("--rate", "200")) ?? 200
        let estops = Int(arguments.string("--estops", "100")) ?? 100
        let withScan = arguments.has("--scan")
        print("ServerBench: \(Int(seconds)) s per phase, \(clients) WebSocket clients, \(Int(rate)) commands/s, \(estops) e-stops; "
              + "\(ProcessInfo.processInfo.processorCount) CPUs")

        let rig = try await Rig(withContainer: withScan)
        for note in rig.loop.realtimeNotes { print("loop: \(note)") }
        let tickMilliseconds = 1000 / rig.loop.configuration.loopRateHertz
        let admin = CommandClient(baseURL: rig.baseURL)
        _ = try await admin.logIn(name: "bench", password: Rig.password)

        var scanKeepAlive: Task<Void, Never>?
        if withScan {
            let planned = try await admin.send("POST", "/api/v1/scans", json: ["containerNumber": "MSKU9070323", "size": "42G1", "profile": "snt0570-2007"])
            let id = planned.object["id"] as? String ?? ""
            _ = try await admin.acquireLease(client: "bench-scan")
            scanKeepAlive = admin.keepLeaseAlive()
            let started = try await admin.send("POST", "/api/v1/scans/\(id)/start")
            print("scan \(id): \(started.status) \(started.object["points"] ?? "?") points")
        }

        // Phase 1: quiet.
        try await Task.sleep(nanoseconds: 2_000_000_000)
        rig.loop.resetStatistics()
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        let quiet = rig.loop.statistics()

        // Phase 2: load.
        let framesReceived = Atomic<Int>(0)
        let socketsOpen = Atomic<Int>(0)
        var sockets: [Task<Void, Never>] = []
        for _ in 0..<clients {
            let url = (try? await admin.webSocketURL()) ?? ""
            sockets.append(Task {
                var logger = Logger(label: "bench.ws")
                logger.logLevel = .critical
                _ = try? await WebSocketClient.connect(url: url, logger: logger) { inbound, _, _ in
                    socketsOpen.add(1, ordering: .relaxed)
                    defer { socketsOpen.subtract(1, ordering: .relaxed) }
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if case .text(let text) = message, text.contains("\"type\":\"telemetry\"") {
                            framesReceived.add(1, ordering: .relaxed)
                        }
                        if Task.isCancelled { break }
                    }
                }
            })
        }
        let connectDeadline = Date().addingTimeInterval(20)
        while socketsOpen.load(ordering: .relaxed) < clients && Date() < connectDeadline { try await Task.sleep(nanoseconds: 50_000_000) }
        print("websocket clients connected: \(socketsOpen.load(ordering: .relaxed))/\(clients)")

        let stats = LoadStatistics()
        let workers = 8
        let baseURL = admin.baseURL
        let token = admin.token
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<workers {
                    group.addTask {
                        let client = CommandClient(baseURL: baseURL, token: token)
                        let period = Double(workers) / rate
                        var next = Date()
                        while !Task.isCancelled {
                            let started = DispatchTime.now().uptimeNanoseconds
                            let reply = withScan
                                ? try? await client.send("POST", "/api/v1/compute", json: [:], timeout: 10)
                                : try? await client.send("POST", "/api/v1/commands", json: ["type": "stop"], timeout: 10)
                            let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
                            stats.record(micros: micros, ok: reply?.status == (withScan ? 200 : 202) || (withScan && reply?.status == 409))
                            next = next.addingTimeInterval(period)
                            let wait = next.timeIntervalSinceNow
                            if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) } else { next = Date() }
                        }
                    }
                }
            }
        }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        rig.loop.resetStatistics()
        let framesBefore = framesReceived.load(ordering: .relaxed)
        stats.reset()
        let memoryStart = MemoryUse.now()
        let loadStarted = Date()
        // Memory ten times over the load, to tell a cache filling up from a leak.
        for step in 1...10 {
            try await Task.sleep(nanoseconds: UInt64(seconds / 10 * 1e9))
            print(String(format: "  load %3.0f%%: memory %@", Double(step) * 10, MemoryUse.now().description))
        }
        let loaded = rig.loop.statistics()
        let loadSeconds = Date().timeIntervalSince(loadStarted)
        let frames = framesReceived.load(ordering: .relaxed) - framesBefore
        let (trip, commands, failed) = stats.snapshot()
        let memoryEnd = MemoryUse.now()
        var scanLine = ""
        if withScan {
            let state = try await admin.send("GET", "/api/v1/state")
            if let scan = state.object["scan"] as? [String: Any], let p = scan["progress"] as? [String: Any] {
                scanLine = "scan during the run: \(p["phase"] ?? "") \(p["completedPoints"] ?? 0)/\(p["totalPoints"] ?? 0) points, "
                    + "safety stops now: \((state.object["safety"] as? [String: Any])?["stopped"] ?? "?")"
            }
            _ = try await admin.send("POST", "/api/v1/scans/\(state.object["scan"].flatMap { ($0 as? [String: Any])?["id"] as? String } ?? "")/abort")
            scanKeepAlive?.cancel()
            _ = try await admin.send("DELETE", "/api/v1/lease")
            try await Task.sleep(nanoseconds: 2_000_000_000)
        }

        // Command to wire, still under load: POST /api/v1/estop → the firmware sees the e-stop write.
        var wire = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        _ = try await admin.acquireLease(client: "bench")
        let keepAlive = admin.keepLeaseAlive()
        for _ in 0..<estops {
            let before = rig.simulator.model.softwareEstopArrivalNanoseconds
            let sentAt = MonotonicClock.nanoseconds()
            let reply = try await admin.send("POST", "/api/v1/estop")
            guard reply.status == 202 else { print("e-stop refused: \(reply.text)"); break }
            let deadline = Date().addingTimeInterval(2)
            while rig.simulator.model.softwareEstopArrivalNanoseconds == before && Date() < deadline {
                try await Task.sleep(nanoseconds: 100_000)
            }
            let arrived = rig.simulator.model.softwareEstopArrivalNanoseconds
            if arrived != before, arrived > sentAt { wire.record((arrived - sentAt) / 1000) }
            _ = try await admin.send("POST", "/api/v1/estop/release")
            let released = Date().addingTimeInterval(5)
            while rig.loop.snapshot().stopCause != nil && Date() < released { try await Task.sleep(nanoseconds: 5_000_000) }
            try await Task.sleep(nanoseconds: UInt64.random(in: 10_000_000...40_000_000))
        }
        keepAlive.cancel()
        load.cancel()
        for socket in sockets { socket.cancel() }

        func ms(_ micros: UInt64) -> String { String(format: "%.2f ms", Double(micros) / 1000) }
        print("")
        print("loop (\(Int(rig.loop.configuration.loopRateHertz)) Hz)      quiet            under load")
        print("  ticks           \(quiet.ticks)            \(loaded.ticks)")
        print("  overruns        \(quiet.overruns)                \(loaded.overruns)")
        print("  wake p50/p99/max \(quiet.wakeLatencyP50)/\(quiet.wakeLatencyP99)/\(quiet.wakeLatencyMax) µs   "
              + "\(loaded.wakeLatencyP50)/\(loaded.wakeLatencyP99)/\(loaded.wakeLatencyMax) µs")
        print("  overruns caused by the server: \(Int(loaded.overruns) - Int(quiet.overruns))")
        print(String(format: "load: %d WebSocket clients, %.1f telemetry frames/s each (command feedback besides); %.1f commands/s, %d failed",
                     clients, Double(frames) / loadSeconds / Double(max(1, clients)), Double(commands) / loadSeconds, failed))
        if withScan { print(scanLine) }
        print("memory at the start of the load: \(memoryStart)")
        print("memory at the end of the load:   \(memoryEnd)")
        print("HTTP \(withScan ? "compute" : "command") round trip: p50 \(ms(trip.valueAtPercentile(50))), p99 \(ms(trip.valueAtPercentile(99))), "
              + "max \(ms(trip.max)) over \(trip.totalCount)")
        print("command to wire (POST /api/v1/estop → firmware): p50 \(ms(wire.valueAtPercentile(50))), p99 \(ms(wire.valueAtPercentile(99))), "
              + "max \(ms(wire.max)) over \(wire.totalCount) = p99 "
              + String(format: "%.2f", Double(wire.valueAtPercentile(99)) / 1000 / tickMilliseconds) + " loop ticks (target ≤ 2)")
        rig.stop()
        // The targets: no overrun the load added, e-stop to wire within 2 ticks at p99, no command failed.
        let caused = Int(loaded.overruns) - Int(quiet.overruns)
        let wireTicks = Double(wire.valueAtPercentile(99)) / 1000 / tickMilliseconds
        let met = caused <= 0 && wire.totalCount > 0 && wireTicks <= 2 && failed == 0
        print(met ? "targets met" : "targets NOT met (overruns caused \(caused), e-stop p99 \(String(format: "%.2f", wireTicks)) ticks, \(failed) failed)")
        exit(met ? 0 : 1)
    }
}

/// Round trips of the command load.
final class LoadStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private var sent = 0
    private var failed = 0

    func record(micros: UInt64, ok: Bool) {
        lock.withLock {
            histogram.record(micros)
            sent += 1
            if !ok { failed += 1 }
        }
    }

    func reset() { lock.withLock { histogram.reset(); sent = 0; failed = 0 } }

    func snapshot() -> (Histogram<UInt64>, Int, Int) { lock.withLock { (histogram, sent, failed) } }
}

/// The loop, the simulator and the server, in one process, as in robotd.
final class Rig: @unchecked Sendable {
    static let password = "bench password 1"
    let robot: PtyRobot
    var simulator: Simulator { robot.simulator }
    var loop: ControlLoop { robot.loop }
    let server: CommandServer
    let directory: URL
    var port = 0
    var serverTask: Task<Void, Error>?

    init(withContainer: Bool) async throws {
        var scenario = Scenario(name: "server bench yard")
        scenario.startX = -12
        scenario.startY = 1
        if withContainer {
            scenario.field = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0.1, driftPeriodSeconds: 7200,
                                            containers: [PlacedContainer(number: "MSKU9070323", type: .fortyFoot, x: 0, y: 0)])
        }
        var control = ControlConfiguration()
        if withContainer { control.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 12.242, maxY: 0.05)] }
        robot = try await PtyRobot(scenario: scenario, configuration: control)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("server-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try ScanStore(path: directory.appendingPathComponent("scans.sqlite").path)
        try store.addUser(name: "bench", role: .supervisor, credential: try PasswordHasher.credential(for: Self.password), by: "bench")
        var configuration = ServerConfiguration()
        configuration.port = 0
        // The bench's 100 telemetry clients log in as one user: lift the per-user cap.
        configuration.maximumWebSockets = 512
        configuration.maximumWebSocketsPerUser = 512
        var logger = Logger(label: "server-bench")
        logger.logLevel = .critical
        server = CommandServer(configuration: configuration, loop: robot.loop, store: store, logger: logger)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = try server.makeApplication { continuation.yield($0) }
        serverTask = Task { try await app.runService(gracefulShutdownSignals: []) }
        for await p in stream { port = p; break }
    }

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    func stop() {
        serverTask?.cancel()
        robot.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
