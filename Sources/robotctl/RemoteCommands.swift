import ArgumentParser
import CommandClient
import CommandServer
import Foundation
import InspectionStore

// robotctl's API client commands: the same REST/WebSocket API the phone UI uses.

/// Where robotd is and who we are. The token comes from --token, $ROBOTD_TOKEN, or the
/// file `robotctl login` writes (~/.config/robotctl/token, mode 0600).
struct ServerOptions: ParsableArguments {
    @Option(help: "robotd's URL (default: $ROBOTD_URL or http://127.0.0.1:8080).")
    var server: String?

    @Option(help: "Bearer token (default: $ROBOTD_TOKEN or the one `robotctl login` saved).")
    var token: String?

    static var tokenFile: URL {
        let base = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config")
        return base.appendingPathComponent("robotctl").appendingPathComponent("token")
    }

    var baseURL: URL {
        get throws {
            let text = server ?? ProcessInfo.processInfo.environment["ROBOTD_URL"] ?? "http://127.0.0.1:8080"
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ValidationError("--server '\(text)' is not an http(s) URL, e.g. http://127.0.0.1:8080")
            }
            return url
        }
    }

    func client() throws -> CommandClient {
        let saved = (try? String(contentsOf: Self.tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return CommandClient(baseURL: try baseURL, token: token ?? ProcessInfo.processInfo.environment["ROBOTD_TOKEN"] ?? saved)
    }
}

/// Prints the server's refusal and exits 1.
func check(_ reply: CommandClient.Reply, _ what: String) throws {
    guard reply.isSuccess else {
        FileHandle.standardError.write(Data("robotctl: \(what) refused (\(reply.status) \(reply.errorCode ?? "")): \(reply.errorMessage ?? reply.text)\n".utf8))
        throw ExitCode(1)
    }
}

func printJSON(_ reply: CommandClient.Reply) {
    if let json = reply.json, let data = try? JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    } else {
        print(reply.text)
    }
}

/// Runs `body` holding the motion lease (acquired as `robotctl`, kept alive, returned after).
func withLease<T>(_ client: CommandClient, _ body: () async throws -> T) async throws -> T {
    try check(try await client.acquireLease(client: "robotctl@\(ProcessInfo.processInfo.hostName)"), "taking the motion lease")
    let keepAlive = client.keepLeaseAlive()
    do {
        let result = try await body()
        keepAlive.cancel()
        _ = try? await client.send("DELETE", "/api/v1/lease")
        return result
    } catch {
        keepAlive.cancel()
        _ = try? await client.send("DELETE", "/api/v1/lease")
        throw error
    }
}

/// Sends one command and waits for it; prints its final state (and reading).
func runCommand(_ options: ServerOptions, _ fields: [String: Any], lease: Bool) async throws {
    let client = try options.client()
    let reply = try await (lease ? withLease(client) { try await client.command(fields, wait: true) } : client.command(fields, wait: true))
    try check(reply, "the command")
    let o = reply.object
    var line = "#\(o["id"] ?? "?") \(o["command"] ?? ""): \(o["state"] ?? "")"
    if let problem = o["problem"] as? String { line += " — \(problem)" }
    if let r = o["reading"] as? [String: Any], let dose = r["doseRateMicrosievertsPerHour"] as? Double,
       let u = r["doseRateUncertaintyMicrosievertsPerHour"] as? Double {
        line += String(format: " — %.3f ± %.3f μSv/h (%@ counts)", dose, u, "\(r["counts"] ?? "?")")
    }
    print(line)
    if o["state"] as? String != "done" { throw ExitCode(1) }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log in to robotd and save the token for the other commands.",
                                                    discussion: "The password is read from $ROBOTD_PASSWORD, or from standard input.")
    @OptionGroup var options: ServerOptions
    @Argument(help: "User name.")
    var name: String

    func run() async throws {
        let password = ProcessInfo.processInfo.environment["ROBOTD_PASSWORD"] ?? readPassword()
        let client = try options.client()
        let reply = try await client.logIn(name: name, password: password)
        try check(reply, "log-in")
        let file = ServerOptions.tokenFile
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: file.path, contents: Data((client.token ?? "").utf8), attributes: [.posixPermissions: 0o600])
        print("logged in as \(name) (\(reply.object["role"] ?? "")); token saved to \(file.path), valid until \(reply.object["expiresAt"] ?? "")")
    }

    func readPassword() -> String {
        if isatty(STDIN_FILENO) != 0, let entered = getpass("password for \(name): ") { return String(cString: entered) }
        return readLine(strippingNewline: true) ?? ""
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the robot's state (JSON).")
    @OptionGroup var options: ServerOptions
    func run() async throws {
        let reply = try await options.client().send("GET", "/api/v1/state")
        try check(reply, "status")
        printJSON(reply)
    }
}

struct Walk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Walk straight (metres; negative reverses), holding the lease meanwhile.")
    @OptionGroup var options: ServerOptions
    @Argument(help: "Distance in metres.") var metres: Double
    @Option(help: "Speed in m/s.") var speed: Double?
    func run() async throws {
        var fields: [String: Any] = ["type": "walk", "metres": metres]
        if let speed { fields["speedMetresPerSecond"] = speed }
        try await runCommand(options, fields, lease: true)
    }
}

struct Raise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Raise or lower the detector to a height (metres), holding the lease meanwhile.")
    @OptionGroup var options: ServerOptions
    @Argument(help: "Height above ground in metres.") var height: Double
    func run() async throws { try await runCommand(options, ["type": "lift", "heightMetres": height], lease: true) }
}

struct Home: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Home the lift (needed after power-up).")
    @OptionGroup var options: ServerOptions
    func run() async throws { try await runCommand(options, ["type": "home"], lease: true) }
}

struct Measure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Dwell and print the dose rate with its uncertainty.")
    @OptionGroup var options: ServerOptions
    @Argument(help: "Dwell in seconds.") var seconds: Double = 5
    func run() async throws { try await runCommand(options, ["type": "measure", "seconds": seconds], lease: false) }
}

struct Estop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Software e-stop: cut drive power now (no lease needed).",
        discussion: "Exits 0 only once robotd says the control loop latched the stop; otherwise tries again for 5 s and exits 1.")
    @OptionGroup var options: ServerOptions
    func run() async throws {
        let client = try options.client()
        var last: CommandClient.Reply?
        for _ in 0..<20 {
            let reply = try await client.send("POST", "/api/v1/estop", timeout: 2)
            if reply.isSuccess, reply.object["latched"] as? Bool == true {
                print(String(format: "e-stop latched (command %@, %.1f ms)", "\(reply.object["id"] ?? "?")",
                             reply.object["waitedMilliseconds"] as? Double ?? 0))
                return
            }
            last = reply
            try await Task.sleep(nanoseconds: 250_000_000)
        }
        if let last { try check(last, "e-stop") }
        FileHandle.standardError.write(Data("robotctl: the e-stop was not confirmed; press the robot's red button\n".utf8))
        throw ExitCode(1)
    }
}

struct Compute: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compute a verdict on a scan's readings so far (default: the running or latest scan).")
    @OptionGroup var options: ServerOptions
    @Argument(help: "Scan ID.") var scanId: String?
    func run() async throws {
        let client = try options.client()
        let reply = try await client.send("POST", "/api/v1/compute", json: scanId.map { ["scanId": $0] } ?? [:])
        try check(reply, "compute")
        let o = reply.object
        print(String(format: "%@: background %.3f μSv/h, max net %.3f μSv/h over %d points", "\(o["outcome"] ?? "?")",
                     o["backgroundMean"] as? Double ?? .nan, o["maxNet"] as? Double ?? .nan, (o["points"] as? [Any])?.count ?? 0))
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Follow the telemetry stream (one line per frame; --json for the frames).")
    @OptionGroup var options: ServerOptions
    @Option(help: "Stop after this many frames (0: until interrupted).") var count = 0
    @Flag(help: "Print the raw JSON frames.") var json = false
    func run() async throws {
        let client = try options.client()
        let limit = count
        let raw = json
        let seen = Counter()
        try await client.watch { text in
            if raw {
                print(text)
            } else if let frame = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
                print(Watch.summary(frame))
            }
            fflush(nil)
            return limit == 0 || seen.next() < limit
        }
    }

    static func summary(_ frame: [String: Any]) -> String {
        guard let data = frame["data"] as? [String: Any] else { return "\(frame)" }
        if frame["type"] as? String == "command" {
            return "command #\(data["id"] ?? "?") \(data["command"] ?? ""): \(data["state"] ?? "")" + ((data["problem"] as? String).map { " — \($0)" } ?? "")
        }
        let pose = data["pose"] as? [String: Any] ?? [:], lift = data["lift"] as? [String: Any] ?? [:]
        let dose = data["dose"] as? [String: Any] ?? [:], safety = data["safety"] as? [String: Any] ?? [:]
        var line = String(format: "x %.3f y %.3f m  %.0f°  lift %.3f m  %.3f ± %.3f μSv/h", pose["xMetres"] as? Double ?? .nan,
                          pose["yMetres"] as? Double ?? .nan, pose["headingDegrees"] as? Double ?? .nan, lift["heightMetres"] as? Double ?? .nan,
                          dose["microsievertsPerHour"] as? Double ?? .nan, dose["uncertaintyMicrosievertsPerHour"] as? Double ?? .nan)
        line += (safety["stopped"] as? Bool == true) ? "  STOPPED: \(safety["message"] ?? "")" : "  ok"
        if let scan = data["scan"] as? [String: Any], let p = scan["progress"] as? [String: Any] {
            line += "  scan \(p["phase"] ?? "") \(p["completedPoints"] ?? 0)/\(p["totalPoints"] ?? 0)"
        }
        return line
    }

    final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func next() -> Int { lock.withLock { value += 1; return value } }
    }
}

struct ScanStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Plan and start a scan on robotd, hold the lease while it runs, and print the verdict.",
        discussion: "With --resume SCAN_ID, carries on with an interrupted scan instead.")
    @OptionGroup var options: ServerOptions
    @Argument(help: "Container number (ISO 6346).") var container: String?
    @Option(help: "Size-type: 22G1, 42G1, 45G1, L5G1.") var size = "42G1"
    @Option(help: "Door-end left corner and heading: x,y,heading (metres, degrees).") var at = "0,0,0"
    @Option(help: "Profile name on the server (GET /api/v1/profiles).") var profile: String?
    @Option(help: "Resume this interrupted scan.") var resume: String?
    @Flag(help: "Locate the container with the range pair first (--at is then a first guess within 1 m and 5°) and scan it as measured.")
    var register = false

    func run() async throws {
        let client = try options.client()
        let id: String
        if let resume {
            id = resume
        } else {
            guard let container else { throw ValidationError("name the container, or give --resume SCAN_ID") }
            let parts = at.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 3 else { throw ValidationError("--at '\(at)' must be x,y,heading, e.g. 0,0,0") }
            var body: [String: Any] = ["containerNumber": container, "size": size, "xMetres": parts[0], "yMetres": parts[1], "headingDegrees": parts[2]]
            if let profile { body["profile"] = profile }
            let planned = try await client.send("POST", "/api/v1/scans", json: body)
            try check(planned, "planning the scan")
            id = planned.object["id"] as? String ?? ""
            print("planned scan \(id): \(planned.object["points"] ?? "?") points")
        }
        try await withLease(client) {
            if register && resume == nil {
                try check(try await client.send("POST", "/api/v1/scans/\(id)/register"), "locating the container")
                print("locating the container: a pass along its left wall")
                while true {
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                    let status = try await client.send("GET", "/api/v1/scans/\(id)")
                    try check(status, "scan status")
                    let registration = status.object["registration"] as? [String: Any] ?? [:]
                    let state = registration["state"] as? String ?? ""
                    if state == "running" { continue }
                    guard state == "done", let measured = registration["measured"] as? [String: Any] else {
                        print("the container was not located: \(registration["problem"] ?? "no answer")")
                        throw ExitCode(1)
                    }
                    print(String(format: "container located at %.3f, %.3f m, %.2f°: %.3f m and %.2f° from the placement given",
                                 measured["xMetres"] as? Double ?? .nan, measured["yMetres"] as? Double ?? .nan,
                                 measured["headingDegrees"] as? Double ?? .nan, registration["offsetMetres"] as? Double ?? .nan,
                                 registration["headingOffsetDegrees"] as? Double ?? .nan))
                    break
                }
            }
            try check(try await client.send("POST", "/api/v1/scans/\(id)/start"), "starting the scan")
            var last = ""
            while true {
                try await Task.sleep(nanoseconds: 1_000_000_000)
                let status = try await client.send("GET", "/api/v1/scans/\(id)")
                try check(status, "scan status")
                let state = status.object["state"] as? String ?? ""
                if let p = status.object["progress"] as? [String: Any] {
                    let line = "\(p["phase"] ?? "") \(p["completedPoints"] ?? 0)/\(p["totalPoints"] ?? 0) points, ETA \(Int(p["etaSeconds"] as? Double ?? 0)) s"
                        + ((p["waitingForReset"] as? String).map { " — waiting for reset: \($0)" } ?? "")
                    if line != last { print(line); last = line }
                }
                if state != "running" && state != "paused" {
                    print("scan \(id): \(state)" + ((status.object["outcome"] as? String).map { ", verdict \($0)" } ?? "")
                          + ((status.object["ending"] as? String).map { " (\($0))" } ?? ""))
                    if state != "done" { throw ExitCode(1) }
                    break
                }
            }
        }
    }
}

struct User: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage users directly in the store (on the robot's computer).",
                                                    subcommands: [UserAdd.self])
}

struct UserAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a user; this is how the first supervisor is made (there is no default password).",
        discussion: "The password is read from $ROBOTD_PASSWORD, or from standard input; at least \(PasswordHasher.minimumLength) characters.")
    @OptionGroup var store: StoreOption
    @Argument(help: "User name.") var name: String
    @Option(help: "viewer, operator or supervisor.") var role = "operator"

    func run() throws {
        guard let parsedRole = Role(rawValue: role) else { throw ValidationError("--role '\(role)': allowed viewer, operator, supervisor") }
        let password: String
        if let fromEnvironment = ProcessInfo.processInfo.environment["ROBOTD_PASSWORD"] {
            password = fromEnvironment
        } else if isatty(STDIN_FILENO) != 0, let entered = getpass("password for \(name): ") {
            password = String(cString: entered)
        } else {
            password = readLine(strippingNewline: true) ?? ""
        }
        let credential: String
        do { credential = try PasswordHasher.credential(for: password) } catch { throw ValidationError(error.description) }
        do {
            try ScanStore(path: store.store).addUser(name: name, role: parsedRole, credential: credential, by: "robotctl@\(ProcessInfo.processInfo.hostName)")
        } catch {
            throw ValidationError("\(error)")
        }
        print("user \(name) added as \(role) to \(store.store)")
    }
}
