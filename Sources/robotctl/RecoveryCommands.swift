import ArgumentParser
import CommandClient
import Foundation

// robotctl's commands for getting back to work after a stop, and for holding the motion
// lease from a rig's script.

struct Reset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reset a safety stop or drive fault once its cause is gone (takes and returns the lease).",
        discussion: "A scan waiting for the reset carries on by itself. A software e-stop is released with `robotctl release`.")
    @OptionGroup var options: ServerOptions
    func run() async throws { try await runCommand(options, ["type": "resetFault"], lease: true) }
}

struct Release: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Release a software e-stop and reset (takes and returns the lease).")
    @OptionGroup var options: ServerOptions
    func run() async throws {
        let client = try options.client()
        let reply = try await withLease(client) { () async throws -> CommandClient.Reply in
            let posted = try await client.send("POST", "/api/v1/estop/release")
            try check(posted, "releasing the e-stop")
            guard let id = posted.object["id"] else { return posted }
            // Wait for the loop's answer while the lease is still ours.
            for _ in 0..<50 {
                let status = try await client.send("GET", "/api/v1/commands/\(id)")
                if let state = status.object["state"] as? String, !["accepted", "running"].contains(state) { return status }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            return posted
        }
        let o = reply.object
        print("#\(o["id"] ?? "?") \(o["command"] ?? ""): \(o["state"] ?? "")" + ((o["problem"] as? String).map { " — \($0)" } ?? ""))
        if o["state"] as? String != "done" { throw ExitCode(1) }
    }
}

struct Lease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the motion lease, or hold it (for rigs and scripts).",
        subcommands: [LeaseShow.self, LeaseHold.self], defaultSubcommand: LeaseShow.self)
}

struct LeaseShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Who holds the motion lease (JSON).")
    @OptionGroup var options: ServerOptions
    func run() async throws {
        let reply = try await options.client().send("GET", "/api/v1/lease")
        try check(reply, "lease status")
        printJSON(reply)
    }
}

struct LeaseHold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Take the motion lease and keep it alive (4 Hz) until --seconds pass or Ctrl-C, then return it.",
        discussion: "While it is held, the deadman is armed: if this process stops sending keep-alives the robot stops.")
    @OptionGroup var options: ServerOptions
    @Option(help: "How long to hold it (seconds, 1 to 86400).") var seconds: Double = 3600
    @Flag(help: "Take it over from its holder (supervisors only; audited).") var takeOver = false
    func run() async throws {
        guard (1...86_400).contains(seconds) else { throw ValidationError("--seconds must be 1 to 86400, got \(seconds)") }
        let client = try options.client()
        let name = "robotctl@\(ProcessInfo.processInfo.hostName)"
        if takeOver {
            let reply = try await client.send("POST", "/api/v1/lease/takeover", json: ["client": name])
            try check(reply, "taking the lease over")
            client.leaseId = reply.object["lease"] as? String
        } else {
            try check(try await client.acquireLease(client: name), "taking the motion lease")
        }
        print("holding lease \(client.leaseId ?? "?") for \(Int(seconds)) s (Ctrl-C returns it)")
        let keepAlive = client.keepLeaseAlive()
        let interrupted = SignalFlag()
        let sources = [SIGINT, SIGTERM].map { signalNumber -> DispatchSourceSignal in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler { interrupted.set() }
            source.resume()
            return source
        }
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && !interrupted.isSet { try? await Task.sleep(nanoseconds: 100_000_000) }
        keepAlive.cancel()
        sources.forEach { $0.cancel() }
        let returned = try await client.send("DELETE", "/api/v1/lease")
        try check(returned, "returning the lease")
        print("lease returned")
    }
}

/// Set from a signal handler's dispatch source, read by the waiting task.
final class SignalFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
