import ArgumentParser
import Foundation
import Logging
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

    @Flag(help: "Exit after the demo instead of waiting for SIGTERM.")
    var exitAfterDemo = false

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
        var simulator: SimulatorProcess?
        if sim {
            let link = "/tmp/robot-sim/robotd-\(getpid())"
            do {
                simulator = try SimulatorProcess(linkPath: link, scenario: scenario)
            } catch {
                FileHandle.standardError.write(Data("robotd: \(error.description)\n".utf8))
                throw ExitCode(2)
            }
            configuration.endpoint = .rtu(.path(link), responseTimeoutMilliseconds: 100)
            logger.info("simulator started", metadata: ["pid": "\(simulator?.pid ?? 0)", "link": "\(link)"])
        }
        defer { simulator?.stop() }

        let bus = ModbusBus(configuration: BusConfiguration(endpoint: configuration.endpoint, maxRetries: configuration.maxRetries))
        let loop = ControlLoop(bus: bus, configuration: configuration.control)
        let exitAfter = exitAfterDemo
        var afterStart: (@Sendable (ControlLoop, Logger) async -> Void)?
        if demo {
            afterStart = { (loop: ControlLoop, logger: Logger) async in
                await SmokeDemo.run(loop: loop, logger: logger)
                if exitAfter { kill(getpid(), SIGTERM) }
            }
        }
        let service = RobotService(loop: loop, logger: logger, afterStart: afterStart)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("robotd stopped with an error", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
