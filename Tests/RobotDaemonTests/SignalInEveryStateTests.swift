import CommandClient
import CommandServer
import Foundation
import InspectionStore
import RobotTesting
import Testing

/// SIGTERM in every state robotd can be in, driven through the officers' API: motion is
/// halted within 2 loop ticks of the signal (robotd logs the count), robotd exits with
/// status 0 within 5 s plus the lift's park time, and the simulator child goes with it.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct SignalInEveryStateTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let password = "signal test password"

    /// A robotd with the simulator, its server on a free port, and an operator's client
    /// holding the lease.
    struct Running {
        let daemon: RobotdProcessTests.Daemon
        let client: CommandClient
        let keepAlive: Task<Void, Never>
    }

    func start(scenarioExtra: String = "", holdLease: Bool = true) async throws -> Running {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("signal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = directory + "/scans.sqlite"
        try ScanStore(path: store).addUser(name: "otto", role: .operator,
                                           credential: try PasswordHasher.credential(for: Self.password, rounds: 1 << 10), by: "test")
        var scenario = try String(contentsOf: Self.root.appendingPathComponent("hil/scenarios/clean-20ft.yaml"), encoding: .utf8)
        scenario += scenarioExtra
        try scenario.write(toFile: directory + "/scenario.yaml", atomically: true, encoding: .utf8)
        let config = directory + "/robotd.yaml"
        try "store: \(store)\nserver:\n  port: 0\n  profiles: \(Self.root.appendingPathComponent("profiles").path)\n  defaultProfile: demo\n  reports: \(directory)/reports\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try RobotdProcessTests.Daemon(["--config", config, "--sim", "--scenario", directory + "/scenario.yaml",
                                                    "--sim-time-scale", "5", "--port", "0"])
        let client = CommandClient(baseURL: try await daemon.serverURL(within: 60))
        #expect(try await client.logIn(name: "otto", password: Self.password).status == 200)
        // The loop starts after the server: wait for the robot to answer.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let state = try? await client.state(), state.devices.lift.lifecycle != .unconfigured { break }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        if holdLease { #expect(try await client.acquireLease(client: "test").status == 200) }
        return Running(daemon: daemon, client: client, keepAlive: holdLease ? client.keepLeaseAlive() : Task {})
    }

    func state(_ c: CommandClient) async throws -> TelemetryFrame { try await c.state() }

    /// Sends SIGTERM and checks the halt, the exit and its time.
    func terminate(_ r: Running, _ label: String) async {
        let signalled = Date()
        kill(r.daemon.process.processIdentifier, SIGTERM)
        let status = await r.daemon.waitForExit(seconds: 30)
        let seconds = Date().timeIntervalSince(signalled)
        r.keepAlive.cancel()
        let output = r.daemon.output
        #expect(status == 0, "\(label): exit status \(String(describing: status))\n\(output)")
        #expect(seconds <= 5 + 11.25, "\(label): exit took \(seconds) s")
        #expect(RobotdProcessTests.ticksAfterSignal(output).map { $0 <= 2 } == true, "\(label): \(output)")
        #expect(output.contains("robot-sim: stopped"), "\(label): the simulator child stops too")
    }

    @Test func idle() async throws {
        let r = try await start()
        await terminate(r, "idle")
    }

    @Test func walkingHomingAndMeasuring() async throws {
        for label in ["walking", "homing", "measuring"] {
            let r = try await start()
            let body: [String: Any] = switch label {
            case "walking": ["type": "walk", "metres": 3.0]
            case "homing": ["type": "home"]
            default: ["type": "measure", "seconds": 10.0]
            }
            #expect(try await r.client.command(body).status == 202, "\(label)")
            try await Task.sleep(nanoseconds: 600_000_000)
            await terminate(r, label)
        }
    }

    @Test func estoppedAndLinkLost() async throws {
        let stopped = try await start()
        #expect(try await stopped.client.send("POST", "/api/v1/estop").status == 200)
        await terminate(stopped, "e-stopped")
        // The link drops 20 simulated seconds in (4 s at 5×) for 60 s.
        let lost = try await start(scenarioExtra: "faults:\n  - {atSeconds: 20, kind: linkDrop, milliseconds: 60000}\n")
        let deadline = Date().addingTimeInterval(30)
        var cause: String?
        while Date() < deadline, cause == nil {
            cause = (try? await state(lost.client))?.safety.cause?.rawValue
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        #expect(cause != nil, "the lost link stopped the robot")
        await terminate(lost, "link lost")
    }

    @Test func aScanPausedByTheOfficer() async throws {
        let r = try await start()
        let planned = try await r.client.send("POST", "/api/v1/scans", json: ["containerNumber": "CSQU3054383", "size": "22G1", "profile": "demo"])
        let id = try #require(planned.object["id"] as? String)
        #expect(try await r.client.send("POST", "/api/v1/scans/\(id)/start").status == 202)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        #expect(try await r.client.send("POST", "/api/v1/scans/\(id)/pause").status == 200)
        await terminate(r, "scan paused")
    }

    /// robotctl's way back to work for rigs: `estop` exits 0 only once latched,
    /// `release` takes the lease, releases and returns it, `lease show` says who holds it.
    @Test func robotctlEstopReleaseAndLease() async throws {
        let r = try await start(holdLease: false)
        defer { kill(r.daemon.process.processIdentifier, SIGTERM) }
        let url = r.client.baseURL.absoluteString
        func robotctl(_ arguments: [String]) throws -> (status: Int32, output: String) {
            var environment = ProcessInfo.processInfo.environment
            environment["ROBOTD_TOKEN"] = r.client.token
            let outcome = try ChildProcess.run(RobotdProcessTests.binDirectory.appendingPathComponent("robotctl"),
                                               arguments + ["--server", url], environment: environment, timeoutSeconds: 60)
            return (outcome.status, outcome.output)
        }
        let pressed = try robotctl(["estop"])
        #expect(pressed.status == 0 && pressed.output.contains("latched"), "\(pressed.output)")
        #expect(try await state(r.client).safety.cause == .softwareEstop)
        let released = try robotctl(["release"])
        #expect(released.status == 0, "\(released.output)")
        #expect(try await state(r.client).safety.stopped == false)
        let shown = try robotctl(["lease", "show"])
        #expect(shown.status == 0 && shown.output.contains("\"held\""), "\(shown.output)")
        let reset = try robotctl(["reset"])
        #expect(reset.status == 0 && reset.output.contains("done"), "a reset with nothing to reset is done: \(reset.output)")
    }
}
