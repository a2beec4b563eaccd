import ArgumentParser
import Foundation
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

    @Option(help: "Seed for every random draw (odometry, counting).")
    var seed: UInt64 = 1

    func run() async throws {
        guard timeScale > 0, timeScale <= 100 else {
            throw ValidationError("--time-scale must be above 0 and at most 100, got \(timeScale)")
        }
        let model = FirmwareModel(seed: seed)
        let simulator = try Simulator(model: model, options: Simulator.Options(
            linkPath: link,
            lineTiming: LineTiming(enabled: lineTiming, baud: baud, turnaroundMicroseconds: turnaround),
            tcpPort: tcpPort, timeScale: timeScale))
        try simulator.start()
        say("robot-sim: Modbus RTU on \(simulator.serialPath) -> \(simulator.pty.slavePath)")
        if let tcp = simulator.tcp { say("robot-sim: Modbus TCP on 127.0.0.1:\(tcp.port)") }
        say("robot-sim: line timing \(lineTiming ? "on at \(baud) baud" : "off"), time scale \(timeScale), seed \(seed)")
        await waitForTermination()
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

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if done { return false }
        done = true
        return true
    }
}

enum Retained {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
}

/// Writes a line unbuffered, so a parent process reading a pipe sees it at once.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
