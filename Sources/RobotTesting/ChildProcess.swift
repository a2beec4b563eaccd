import Foundation

/// Runs a program to its end with a deadline, for tests.
///
/// `Process.waitUntilExit` cannot be cancelled and has been seen to hang on Linux when
/// called off the main thread; a test that hangs there hangs the whole suite. This waits
/// on the termination handler with a deadline instead, and kills the child past it.
public enum ChildProcess {
    public struct Outcome: Sendable {
        /// The exit status, or -1 if the program was killed at the deadline.
        public let status: Int32
        /// Standard output and standard error together.
        public let output: String
    }

    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                           timeoutSeconds: Double = 120) throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        // Read on another thread, so a child that never closes its output cannot hold us.
        let collected = Collected()
        let reader = Thread {
            collected.set(pipe.fileHandleForReading.readDataToEndOfFile())
        }
        reader.start()
        guard exited.wait(timeout: .now() + timeoutSeconds) == .success else {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            return Outcome(status: -1, output: "\(executable.lastPathComponent) did not exit within \(timeoutSeconds) s; killed. "
                           + String(decoding: collected.waitForData(seconds: 2), as: UTF8.self))
        }
        return Outcome(status: process.terminationStatus, output: String(decoding: collected.waitForData(seconds: 10), as: UTF8.self))
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)

        func set(_ value: Data) {
            lock.lock()
            data = value
            lock.unlock()
            done.signal()
        }

        func waitForData(seconds: Double) -> Data {
            _ = done.wait(timeout: .now() + seconds)
            lock.lock()
            defer { lock.unlock() }
            return data
        }
    }
}
