import Foundation
import Glibc

/// `robot-sim` as a child process for `robotd --sim`, in a process group of its own so
/// that a Ctrl-C meant for robotd does not kill the robot before robotd has parked it.
public final class SimulatorProcess: @unchecked Sendable {
    public let pid: pid_t
    public let linkPath: String

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `robot-sim` (found next to this executable) and waits for its pty link.
    public init(linkPath: String, scenario: String?, extraArguments: [String] = []) throws(Failure) {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let executable = directory.appendingPathComponent("robot-sim").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw Failure(description: "robot-sim not found next to robotd (\(executable)); build it with `swift build`")
        }
        var arguments = [executable, "--link", linkPath]
        if let scenario { arguments += ["--scenario", scenario] }
        arguments += extraArguments
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var cArguments = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, nil, &attributes, &cArguments, environ)
        guard rc == 0 else { throw Failure(description: "cannot start robot-sim: \(String(cString: strerror(rc)))") }
        pid = child
        self.linkPath = linkPath
        unlink(linkPath)
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: linkPath) { return }
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child {
                throw Failure(description: "robot-sim exited at start (status \(status)); run it by hand to see why")
            }
            usleep(25_000)
        }
        kill(child, SIGKILL)
        throw Failure(description: "robot-sim did not create \(linkPath) within 5 s")
    }

    /// Asks the simulator to stop and waits for it.
    public func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }
}
