import ArgumentParser
import CommandClient
import Foundation

struct CheckSource: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-source",
        abstract: "Run the daily check-source test: put the check source in its holder on the probe first.",
        discussion: "The robot counts where it stands; the probe's response (net over the reference) must be within ±10 %. "
            + "A failed test is recorded, and no scan starts until a test passes. Exits 0 when it passes, 1 when it fails.")
    @OptionGroup var options: ServerOptions
    @Option(help: ArgumentHelp("The check source's dose rate at the probe, μSv/h (0.5 to 1000). Leave it out when the source is "
                               + "registered (check-source-register); given, it must agree with the registered one within 2 %."))
    var reference: Double?
    @Option(help: "Counting time, seconds (5 to 600).") var seconds: Double = 30

    func run() async throws {
        let client = try options.client()
        var body: [String: Any] = ["seconds": seconds]
        if let reference { body["referenceMicrosievertsPerHour"] = reference }
        let reply = try await withLease(client) {
            try await client.send("POST", "/api/v1/instrument/checks", json: body, timeout: seconds + 60)
        }
        try check(reply, "the check-source test")
        let o = reply.object
        let response = o["response"] as? Double ?? .nan
        let passed = o["passed"] as? Bool ?? false
        print(String(format: "%@: response %.3f ± %.3f (%+.1f %%; tolerance ±%.0f %%), %@ counts in %.0f s", passed ? "passed" : "FAILED",
                     response, o["responseUncertainty"] as? Double ?? .nan, 100 * (response - 1), 100 * (o["tolerance"] as? Double ?? .nan),
                     "\(o["counts"] ?? "?")", o["seconds"] as? Double ?? .nan))
        if !passed {
            FileHandle.standardError.write(Data("robotctl: the detector is outside its tolerance; no scan will start until a test passes\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct CheckSourceRegister: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-source-register",
        abstract: "Register the detector's check source from its certificate (supervisor).",
        discussion: "The daily check-source test then takes its reference from here, decayed to the day, and needs none typed in. "
            + "The newest registration is in force; older ones stay in the record.")
    @OptionGroup var options: ServerOptions
    @Option(help: "The check source's identifier on its certificate.") var sourceId: String
    @Option(help: "Its dose rate at the probe in the holder on the certificate's date, μSv/h (0.5 to 1000).") var reference: Double
    @Option(help: "The certificate's date, YYYYMMDD.") var date: UInt32
    @Option(help: "The nuclide's half-life in days (default Cs-137, 10 987 d).") var halfLifeDays: Double?

    func run() async throws {
        let client = try options.client()
        var body: [String: Any] = ["sourceId": sourceId, "referenceMicrosievertsPerHour": reference, "referenceDate": date]
        if let halfLifeDays { body["halfLifeDays"] = halfLifeDays }
        let reply = try await client.send("PUT", "/api/v1/instrument/check-source", json: body)
        try check(reply, "registering the check source")
        print("registered \(sourceId) for the detector \(reply.object["serialNumber"] ?? "?")")
    }
}

struct Instrument: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The detector's check-source tests and the station background of recent scans (the trend per site).")
    @OptionGroup var options: ServerOptions

    func run() async throws {
        let client = try options.client()
        let reply = try await client.send("GET", "/api/v1/instrument/checks")
        try check(reply, "reading the instrument records")
        let o = reply.object
        print("Check-source tests (newest first):")
        for c in (o["checks"] as? [[String: Any]] ?? []).prefix(10) {
            print(String(format: "  %@  %@  response %.3f  %@", "\(c["takenAt"] ?? "?")", "\(c["serialNumber"] ?? "?")",
                         c["response"] as? Double ?? .nan, (c["passed"] as? Bool ?? false) ? "passed" : "FAILED"))
        }
        print("Station background of recent scans (oldest first), μSv/h:")
        for p in (o["backgroundTrend"] as? [[String: Any]] ?? []).suffix(20) {
            print(String(format: "  %@  %@  %.3f  drift %+.3f  %@", "\(p["createdAt"] ?? "?")", "\(p["scanId"] ?? "?")",
                         p["backgroundMicrosievertsPerHour"] as? Double ?? .nan, p["driftMicrosievertsPerHour"] as? Double ?? .nan,
                         "\(p["outcome"] ?? "")"))
        }
    }
}
