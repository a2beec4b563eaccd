import Foundation

/// A whole robotd as a child process, for tests and rigs: its output collected, waited on
/// line by line, and a deadline on every wait.
///
/// ```swift
/// let robotd = try RobotdProcess(["--sim", "--port", "0"])
/// let url = try await robotd.serverURL(within: 60)      // the command server on a free port
/// kill(robotd.process.processIdentifier, SIGTERM)
/// let status = await robotd.waitForExit(seconds: 40)
/// ```
/// Without `--port`, `--no-server` is added: most process tests do not need the server,
/// and it would only compete for a port. `program: "robot-sim"` runs the simulator the
/// same way (as the firmware would run: a process of its own that outlives robotd).
public final class RobotdProcess: @unchecked Sendable {
    public let process = Process()
    private let lock = NSLock()
    private var text = ""

    /// The folder of the built executables: next to the test bundle under `swift test`.
    public static var binDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    public init(_ arguments: [String], program: String = "robotd", binDirectory: URL = RobotdProcess.binDirectory) throws {
        process.executableURL = binDirectory.appendingPathComponent(program)
        process.arguments = arguments + (program != "robotd" || arguments.contains("--port") ? [] : ["--no-server"])
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.text += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    /// Everything robotd printed so far (standard output and error).
    public var output: String {
        lock.lock()
        defer { lock.unlock() }
        return text
    }

    /// Waits until the output contains `needle`, up to `seconds`.
    public func waitFor(_ needle: String, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.contains(needle) { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return output.contains(needle)
    }

    /// The exit status, or nil (and the process terminated) if it has not exited by then.
    public func waitForExit(seconds: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !process.isRunning { return process.terminationStatus }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        process.terminate()
        return nil
    }

    /// The command server's address, once robotd says it is listening.
    public func serverURL(within seconds: Double) async throws -> URL {
        guard await waitFor("command server listening", seconds: seconds) else {
            throw RobotRigError(description: "robotd's command server did not start within \(seconds) s:\n\(output)")
        }
        let text = output
        guard let range = text.range(of: "url="),
              let url = URL(string: String(text[range.upperBound...].prefix { !$0.isWhitespace })) else {
            throw RobotRigError(description: "robotd did not print its server's url:\n\(text)")
        }
        return url
    }
}
