import ArgumentParser
import Foundation
import Synchronization
import RobotSimulator

@main
struct RobotSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robot-sim",
        abstract: "Simulated robot firmware: Modbus RTU on a pseudo-terminal (and optionally TCP), with physics.")

    @Option(help: "Stable name for the pty (a symlink to /dev/pts/N).")
    var link = "/tmp/robot-sim/bus0"

    @Option(help: "Also serve Modbus TCP on this loopback port (0 picks a free one).")
    var tcpPort: Int?

    @Flag(help: "Delay replies by the wire time of a real line at --baud.")
    var lineTiming = false

    @Option(help: "Baud rate used for line timing.")
    var baud = 115_200

    @Option(help: "Device turnaround in microseconds, used with line timing.")
    var turnaround = 500

    @Option(help: "Simulated seconds per wall-clock second.")
    var timeScale = 1.0

    @Option(help: "Seed for every random draw (odometry, counting); overrides the scenario's.")
    var seed: UInt64?

    @Option(help: "Scenario file (hil/scenarios/*.yaml): yard, containers, sources, background, faults.")
    var scenario: String?

    @Option(help: "Serve the control socket (fault injection, truth, counters) on this loopback port.")
    var controlPort: Int?

    @Option(help: "Bring back departures from the protocol on purpose, to show the conformance kit fails them: 'all' or a comma-separated list (see hil/README.md, Conformance kit).")
    var deviant: String?

    @Flag(help: "Exit when the parent process dies (robotd --sim uses this, so a killed controller leaves no simulator behind).")
    var exitWithParent = false

    func run() async throws {
        guard timeScale > 0, timeScale <= 100 else {
            throw ValidationError("--time-scale must be above 0 and at most 100, got \(timeScale)")
        }
        var loaded = Scenario(name: "open yard, no containers")
        if let scenario {
            do {
                loaded = try Scenario.load(path: scenario)
            } catch {
                FileHandle.standardError.write(Data("robot-sim: \(error.description)\n".utf8))
                throw ExitCode(2)
            }
        }
        if let seed { loaded.seed = seed }
        if lineTiming {
            loaded.lineTiming = LineTiming(enabled: true, baud: baud, turnaroundMicroseconds: turnaround)
        }
        if timeScale != 1 { loaded.timeScale = timeScale }
        if let deviant {
            do {
                loaded.settings.deviations = try Deviation.parse(deviant)
            } catch {
                throw ValidationError("--deviant: \(error.message)")
            }
        }
        let simulator = try Simulator(scenario: loaded, linkPath: link, tcpPort: tcpPort)
        try simulator.start()
        var control: ControlServer?
        if let controlPort {
            let server = ControlServer(simulator: simulator)
            try server.start(port: controlPort)
            control = server
        }
        say("robot-sim: scenario '\(loaded.name)', \(loaded.field.containers.count) container(s), \(loaded.faults.count) timed fault(s)")
        say("robot-sim: Modbus RTU on \(simulator.serialPath) -> \(simulator.pty.slavePath)")
        if let tcp = simulator.tcp { say("robot-sim: Modbus TCP on 127.0.0.1:\(tcp.port)") }
        let timing = loaded.lineTiming
        say("robot-sim: line timing \(timing.enabled ? "on at \(timing.baud) baud" : "off"), time scale \(loaded.timeScale), seed \(loaded.seed)")
        if let control { say("robot-sim: control socket on 127.0.0.1:\(control.port)") }
        if !loaded.settings.deviations.isEmpty {
            say("robot-sim: DEVIANT, breaking on purpose: " + loaded.settings.deviations.map { "\($0.rawValue) (\($0.rule))" }.sorted().joined(separator: ", "))
        }
        if exitWithParent { watchParent() }
        await waitForTermination()
        control?.stop()
        simulator.stop()
        say("robot-sim: stopped")
    }
}

/// Suspends until SIGINT or SIGTERM.
func waitForTermination() async {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = OnceFlag()
        for sig in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if once.claim() { continuation.resume() }
            }
            source.resume()
            Retained.sources.append(source)
        }
    }
}

/// True for the first caller only (the first of several shutdown paths wins).
final class OnceFlag: Sendable {
    private let done = Atomic<Bool>(false)
    func claim() -> Bool {
        done.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}

enum Retained {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
}

/// Writes a line unbuffered, so a parent process reading a pipe sees it at once.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Raises SIGTERM in this process when the parent goes away (we are re-parented).
func watchParent() {
    let parent = getppid()
    let thread = Thread {
        while getppid() == parent { usleep(200_000) }
        kill(getpid(), SIGTERM)
    }
    thread.start()
}
