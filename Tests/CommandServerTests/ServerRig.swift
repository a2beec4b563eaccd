import CommandClient
import CommandServer
import FirmwareProtocol
import Foundation
import Hummingbird
import InspectionStore
import Logging
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// A real command server on a loopback port, in front of the real control loop driving
/// the firmware simulator over a pty, with a real SQLite store in a temporary directory.
struct ServerRigError: Error, CustomStringConvertible {
    static func serverDidNotStart(_ why: String) -> ServerRigError { ServerRigError(description: "the command server did not start within 30 s: \(why)") }
    let description: String
}

final class ServerRig: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let password = "correct horse battery"

    let robot: PtyRobot
    var simulator: Simulator { robot.simulator }
    var loop: ControlLoop { robot.loop }
    let store: ScanStore
    let server: CommandServer
    let directory: URL
    let port: Int
    let serverTask: Task<Void, Error>

    init(timeScale: Double = 1, tokenLifetimeSeconds: Double = 3600, deadmanTimeoutSeconds: Double = 1.0,
         scenarioFile: String? = nil, keepOutZones: [KeepOutZone]? = nil, rangePollMilliseconds: Int? = nil, tls: (certificate: String, key: String)? = nil,
         configure: (inout ServerConfiguration) -> Void = { _ in }) async throws {
        var scenario: Scenario
        if let scenarioFile {
            scenario = try Scenario.load(path: Self.root.appendingPathComponent(scenarioFile).path)
        } else {
            scenario = Scenario(name: "server test yard")
            scenario.startX = -12
            scenario.startY = 1
        }
        scenario.timeScale = timeScale
        scenario.startLiftMetres = 0.4
        var control = ControlConfiguration()
        control.deadmanTimeoutSeconds = deadmanTimeoutSeconds
        if let rangePollMilliseconds { control.rangePollMilliseconds = rangePollMilliseconds }
        if scenarioFile != nil {
            control.keepOutZones = keepOutZones ?? [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 12.242, maxY: 0.05)]
        }
        robot = try await PtyRobot(scenario: scenario, configuration: control)

        directory = FileManager.default.temporaryDirectory.appendingPathComponent("server-rig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try ScanStore(path: directory.appendingPathComponent("scans.sqlite").path)
        for (name, role) in [("vera", Role.viewer), ("otto", .operator), ("olga", .operator), ("sam", .supervisor)] {
            try store.addUser(name: name, role: role, credential: try PasswordHasher.credential(for: Self.password, rounds: 1 << 10), by: "test")
        }
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.tokenLifetimeSeconds = tokenLifetimeSeconds
        configuration.profilesDirectory = Self.root.appendingPathComponent("profiles").path
        configuration.defaultProfile = "demo"
        configuration.reportDirectory = directory.appendingPathComponent("reports").path
        configuration.timeScale = timeScale
        configuration.refusalLogIntervalSeconds = 0.2
        configuration.tlsCertificatePath = tls?.certificate
        configuration.tlsKeyPath = tls?.key
        configure(&configuration)
        var logger = Logger(label: "server-rig")
        logger.logLevel = .critical
        server = CommandServer(configuration: configuration, loop: robot.loop, store: store, logger: logger)
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let app = try server.makeApplication { port in portContinuation.yield(port) }
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        serverTask = task
        // If the server stops before it binds, the port stream ends instead of waiting for ever.
        Task { _ = await task.result; portContinuation.finish() }
        let timeout = Task { try await Task.sleep(nanoseconds: 30_000_000_000); portContinuation.finish() }
        var bound = 0
        for await p in portStream { bound = p; break }
        timeout.cancel()
        guard bound > 0 else {
            task.cancel()
            throw ServerRigError.serverDidNotStart(String(describing: await task.result))
        }
        port = bound
    }

    deinit {
        serverTask.cancel()
        robot.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// A client logged in as `name`.
    func client(_ name: String) async throws -> CommandClient {
        let client = CommandClient(baseURL: baseURL)
        let reply = try await client.logIn(name: name, password: Self.password)
        #expect(reply.status == 200, "log-in as \(name): \(reply.text)")
        return client
    }

    func waitFor(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return condition()
    }
}
