import ArgumentParser
import CommandServer
import Inspection
import InspectionStore
import Foundation
import Logging
import Metrics
import Prometheus
import RobotControl
import RobotDaemon
import RobotIO
import ServiceLifecycle

@main
struct Robotd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robotd",
        abstract: "The radiation-inspection robot's controller daemon.",
        discussion: "SIGTERM or Ctrl-C stops motion, parks the lift if that is safe, and exits.")

    @Option(help: "Configuration file (see docs/robotd.yaml for every key and its default).")
    var config: String?

    @Flag(help: "Start the firmware simulator as a child process on a pty and drive it.")
    var sim = false

    @Option(help: "Scenario for --sim (hil/scenarios/*.yaml).")
    var scenario: String?

    @Flag(help: "After start-up, home the lift, walk, raise, measure and report (a smoke demo).")
    var demo = false

    @Option(help: "Scan this container (ISO 6346 number), or carry on with its unfinished scan in the store.")
    var scan: String?

    @Option(help: "Container size-type for --scan: 22G1 (20 ft), 42G1 (40 ft), 45G1 (40 ft HC), L5G1 (45 ft HC).")
    var size = "42G1"

    @Option(help: "Container placement for --scan: x,y,heading of its door-end left corner (metres, degrees).")
    var at = "0,0,0"

    @Option(help: "Procedure profile for --scan.")
    var profile = "profiles/snt0570-2007.yaml"

    @Option(help: "SQLite store for scans, users and the audit log (default: the configuration's, scans.sqlite).")
    var store: String?

    @Option(help: "Command server port (default: the configuration's, 8080; 0 picks a free one).")
    var port: Int?

    @Flag(help: "Do not start the command server (API, telemetry and phone UI).")
    var noServer = false

    @Option(help: "Where --scan writes its reports.")
    var reports = "reports"

    @Option(help: "Officer recorded with the scan.")
    var officer = "officer"

    @Option(help: "With --sim: simulated seconds per wall second (1 to 20), for fast demonstrations and tests.")
    var simTimeScale = 1.0

    @Flag(help: "With --scan: measure where the container really is with the range pair (a pass along its left wall) and plan on that; --at is the first guess (within 1 m and 5°).")
    var register = false

    @Flag(help: "Exit when the demo or scan is done instead of waiting for SIGTERM.")
    var exitWhenDone = false

    @Flag(help: "Check the configuration (--config) against this machine, print what is wrong, and exit: 0 usable, 2 not.")
    var checkConfig = false

    @Option(help: .hidden)
    var checkRoot = "/"

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "robotd")
        logger.logLevel = .info
        var configuration = DaemonConfiguration()
        if let config {
            do {
                configuration = try DaemonConfiguration.load(path: config)
            } catch {
                FileHandle.standardError.write(Data("robotd: \(error.description)\n".utf8))
                throw ExitCode(2)
            }
        }
        if let store { configuration.storePath = store }
        if checkConfig {
            let check = ConfigurationCheck(configuration, root: checkRoot)
            for finding in check.findings { print("robotd: \(finding)") }
            guard check.errors.isEmpty else {
                print("robotd: \(config ?? "the default configuration") cannot be used: \(check.errors.count) error(s)")
                throw ExitCode(2)
            }
            print("robotd: \(config ?? "the default configuration") is usable (robot \(configuration.robotId), "
                  + "store \(configuration.storePath), bus \(configuration.endpoint), server \(configuration.server.host):\(configuration.server.port))")
            return
        }
        if let port {
            guard (0...65535).contains(port) else {
                FileHandle.standardError.write(Data("robotd: --port must be 0 to 65535, got \(port)\n".utf8))
                throw ExitCode(2)
            }
            configuration.server.port = port
        }
        configuration.server.robotId = configuration.robotId
        var job: ContainerScanJob?
        if let scan {
            do {
                job = try makeScanJob(number: scan, robotId: configuration.robotId, storePath: configuration.storePath,
                                      probeMount: configuration.server.probeMount)
            } catch {
                FileHandle.standardError.write(Data("robotd: \(error)\n".utf8))
                throw ExitCode(2)
            }
            if let zone = job?.keepOutZone { configuration.control.keepOutZones.append(zone) }
        }
        guard simTimeScale >= 1, simTimeScale <= 20 else {
            FileHandle.standardError.write(Data("robotd: --sim-time-scale must be 1 to 20, got \(simTimeScale)\n".utf8))
            throw ExitCode(2)
        }
        var simulator: SimulatorProcess?
        if sim {
            let link = "/tmp/robot-sim/robotd-\(getpid())"
            // The firmware watchdog runs in simulated time: scale its period with the simulator.
            configuration.control.watchdogTimeoutMilliseconds = UInt16(min(10_000, Double(configuration.control.watchdogTimeoutMilliseconds) * simTimeScale))
            do {
                simulator = try SimulatorProcess(linkPath: link, scenario: scenario,
                                                 extraArguments: ["--time-scale", "\(simTimeScale)", "--exit-with-parent"])
            } catch {
                FileHandle.standardError.write(Data("robotd: \(error.description)\n".utf8))
                throw ExitCode(2)
            }
            configuration.endpoint = .rtu(.path(link), responseTimeoutMilliseconds: 100)
            logger.info("simulator started", metadata: ["pid": "\(simulator?.pid ?? 0)", "link": "\(link)"])
        }
        defer { simulator?.stop() }
        if let fitted = configuration.pollsFitted { logger.notice("line budget: \(fitted)") }
        if let budget = configuration.lineBudget {
            if let problem = budget.problem {
                logger.warning("line budget exceeded", metadata: ["problem": "\(problem)"])
            } else {
                logger.info("line budget", metadata: ["occupancy": "\(LineBudget.percent(budget.occupancy))", "line": "\(budget)"])
            }
        }

        let bus = ModbusBus(configuration: BusConfiguration(endpoint: configuration.endpoint, maxRetries: configuration.maxRetries))
        let loop = ControlLoop(bus: bus, configuration: configuration.control)
        let exitAfter = exitWhenDone
        let runDemo = demo
        let scanJob = job
        let serverHolder = ServerHolder()
        let notifier = SystemdNotifier()
        let readiness = DaemonReadiness(notifier: notifier, waitingFor: noServer ? [.controlLoop] : [.controlLoop, .commandServer])
        if notifier.isActive {
            logger.info("systemd notification on", metadata: ["watchdog": "\(notifier.watchdogInterval.map { "\($0)" } ?? "off")"])
        }
        let officerName = officer
        var afterStart: (@Sendable (ControlLoop, Logger) async -> Void)?
        if demo || job != nil {
            afterStart = { (loop: ControlLoop, logger: Logger) async in
                if runDemo { await SmokeDemo.run(loop: loop, logger: logger) }
                if let scanJob {
                    let server = serverHolder.server
                    await scanJob.run(loop: loop, logger: logger,
                                      onStart: { server?.adoptScan($0, by: officerName) },
                                      onEnd: { server?.scanEnded($0, ending: $1) })
                }
                if exitAfter { kill(getpid(), SIGTERM) }
            }
        }
        let service = RobotService(loop: loop, logger: logger, afterStart: afterStart, notifier: notifier, readiness: readiness)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if !noServer {
            let scanStore: ScanStore
            do {
                scanStore = try ScanStore(path: configuration.storePath)
            } catch {
                FileHandle.standardError.write(Data("robotd: cannot open the store \(configuration.storePath): \(error)\n".utf8))
                throw ExitCode(2)
            }
            if (try? scanStore.userCount()) == 0 {
                logger.notice("no users yet: create the first supervisor with `robotctl user add NAME --role supervisor --store \(configuration.storePath)`")
            }
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            configuration.server.timeScale = sim ? simTimeScale : 1
            let server = CommandServer(configuration: configuration.server, loop: loop, store: scanStore, logger: logger, registry: registry)
            serverHolder.server = server
            let scheme = configuration.server.tlsEnabled ? "https" : "http"
            let host = configuration.server.host
            do {
                let serverLogger = logger
                let app = try server.makeApplication { port in
                    serverLogger.notice("command server listening", metadata: ["url": "\(scheme)://\(host):\(port)/"])
                    readiness.started(.commandServer, detail: "\(scheme)://\(host):\(port)/")
                }
                services.append(.init(service: app))
            } catch {
                FileHandle.standardError.write(Data("robotd: the command server cannot start: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        // A service group shuts its services down last first: the robot goes last in the
        // list so that on SIGTERM/SIGINT it halts at once, before the command server waits
        // for its requests to finish (the server, and with it the phone's e-stop, stays up
        // while the lift parks). The whole shutdown is bounded: 5 s plus the park time.
        // Once the robot has stopped, the server shuts down gracefully too (the default,
        // cancelling it, would lose its last audit entries).
        services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        let control = configuration.control
        let parkSeconds = (control.liftMaximumMetres - control.liftParkMetres) / control.liftMaxSpeedMetresPerSecond
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64((5 + parkSeconds) * 1000))
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await group.run()
        } catch {
            logger.error("robotd stopped with an error", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}

/// The command server, once made, for the scan job started before it.
final class ServerHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var value: CommandServer?
    var server: CommandServer? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

extension Robotd {
    func makeScanJob(number: String, robotId: String, storePath: String, probeMount: ProbeMount) throws(ContainerScanJob.InvalidArguments) -> ContainerScanJob {
        var job = try ContainerScanJob.parse(number: number, size: size, at: at, profilePath: profile, storePath: storePath,
                                             reportDirectory: reports, robotId: robotId, officer: officer, timeScale: sim ? simTimeScale : 1,
                                             probeMount: probeMount)
        job.register = register
        return job
    }
}
