import ArgumentParser
import FirmwareProtocol
import Foundation
import Inspection
import InspectionStore
import Logging
import RobotControl
import RobotDaemon
import RobotIO

@main
struct RobotCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robotctl",
        abstract: "Command-line client for the container radiation-inspection robot.",
        discussion: "API commands (login, status, walk, raise, home, measure, estop, reset, release, lease, compute, watch, scan start, "
            + "report --server) "
            + "talk to robotd; the others work on a bus or a store directly.",
        subcommands: [Login.self, Status.self, Walk.self, Raise.self, Home.self, Measure.self, Estop.self, Reset.self, Release.self, Lease.self, Compute.self, Watch.self,
                      Scan.self, Scans.self, Report.self, Verify.self, Plan.self, User.self, Ports.self, Probe.self, CheckSource.self, CheckSourceRegister.self,
                      Instrument.self, Backup.self])
}

/// How the CLI names a bus: a serial port (path or USB identity) or a TCP gateway.
struct BusOptions: ParsableArguments {
    @Option(name: .long, help: "Serial port: a path (/dev/ttyUSB0, /tmp/robot-sim/bus0), usb-serial:SERIAL or usb:VID:PID[:SERIAL].")
    var port: String?

    @Option(name: .long, help: "Modbus TCP gateway as HOST:PORT, instead of --port.")
    var tcp: String?

    @Option(name: .long, help: "Baud rate for RTU.")
    var baud: Int = 115_200

    @Option(name: .long, help: "Response timeout in milliseconds.")
    var timeout: Int = 200

    func endpoint() throws -> BusEndpoint {
        switch (port, tcp) {
        case let (port?, nil):
            do {
                return .rtu(try PortSelector(parsing: port), baud: baud, responseTimeoutMilliseconds: timeout)
            } catch {
                throw ValidationError(error.description)
            }
        case let (nil, tcp?):
            let parts = tcp.split(separator: ":")
            guard parts.count == 2, let number = Int(parts[1]), (1...65535).contains(number) else {
                throw ValidationError("--tcp '\(tcp)': write HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:502")
            }
            return .tcp(host: String(parts[0]), port: number, responseTimeoutMilliseconds: timeout)
        case (nil, nil):
            throw ValidationError("name the bus with --port PATH or --tcp HOST:PORT")
        case (.some, .some):
            throw ValidationError("give either --port or --tcp, not both")
        }
    }
}

struct Ports: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List serial ports with their USB identity (libserialport).",
        discussion: "Virtual ports (ptys, such as the simulator's) are not listed by libserialport; name them by path.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let ports = SerialPortCatalog.list()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(ports), as: UTF8.self))
            return
        }
        if ports.isEmpty {
            print("No serial ports found. (The simulator's pty is not listed; use its path, e.g. /tmp/robot-sim/bus0.)")
            return
        }
        for port in ports {
            var line = port.path.padding(toLength: 16, withPad: " ", startingAt: 0) + " " + port.transport
            if let vid = port.usbVendorId, let pid = port.usbProductId {
                line += String(format: " usb:%04x:%04x", vid, pid)
            }
            if let serial = port.usbSerialNumber { line += " serial=\(serial)" }
            if let description = port.description { line += "  \(description)" }
            print(line)
        }
    }
}

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect to a bus, check every unit's protocol version, and print every block.")

    @OptionGroup var bus: BusOptions

    func run() async throws {
        let endpoint = try bus.endpoint()
        let modbus = ModbusBus(configuration: BusConfiguration(endpoint: endpoint, maxRetries: 1))
        modbus.start()
        defer { modbus.stop() }
        print("bus \(endpoint)")
        var failures = 0
        for device in RegisterMap.devices {
            do {
                let identity = try await modbus.identify(device)
                print("\n\(device.name) (unit \(device.unitId)): protocol \(identity.protocolVersion), firmware \(identity.firmwareVersionText)")
            } catch {
                failures += 1
                print("\n\(device.name) (unit \(device.unitId)): \(error.reason)")
                continue
            }
            for block in device.blocks where block.table == .input && block.name != "identity" {
                do {
                    let registers = try await modbus.perform(unit: device.unitId, .readInput(address: block.start, count: block.count))
                    for (field, value) in try block.decodeFields(registers) {
                        print("  \(block.name).\(field.name)".padding(toLength: 32, withPad: " ", startingAt: 0) + field.formatted(value))
                    }
                } catch let error as BusError {
                    failures += 1
                    print("  \(block.name): \(error.reason)")
                }
            }
        }
        let stats = modbus.statisticsSnapshot()
        let total = stats.reduce(0) { $0 + $1.transactions }
        let p99 = stats.map(\.latencyP99Microseconds).max() ?? 0
        print("\n\(total) transactions, \(failures) failed, worst p99 latency \(p99) µs")
        if failures > 0 { throw ExitCode(2) }
    }
}

struct StoreOption: ParsableArguments {
    @Option(help: "The SQLite store robotd writes scans to.")
    var store = "scans.sqlite"

    func open(createSigningKey: Bool = true) throws -> ScanStore {
        guard FileManager.default.fileExists(atPath: store) else {
            throw ValidationError("no store at '\(store)'; robotd writes one with --scan (see --store)")
        }
        return try ScanStore(path: store, createSigningKey: createSigningKey)
    }
}

struct Scans: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the newest scans in a store, oldest first.")
    @OptionGroup var store: StoreOption
    @Option(help: "How many scans (1 to 100000).") var limit = 100
    @Option(help: "List the scans created before this scan id.") var before: String?

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit \(limit) is out of range; allowed 1 to 100000") }
    }

    func run() throws {
        for scan in try store.open().scans(limit: limit, before: before) {
            print("\(scan.id)  \(scan.containerNumber)  \(scan.status)  \(scan.createdAt)")
        }
    }
}

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a scan's report: JSON (complete), CSV (every point), bilingual HTML and ANSI N42.42 XML.",
        discussion: """
            From the store, or with --server from robotd's API. A scan without a verdict (unfinished, aborted or refused) \
            gets only its N42.42 file, holding the readings so far and marked INCOMPLETE; the command then exits 4.
            """)
    @OptionGroup var store: StoreOption
    @Argument(help: "The scan ID (robotctl scans lists them).")
    var scanId: String
    @Option(help: "Directory for the report files.")
    var out = "reports"
    @Option(help: "Fetch the report from robotd at this URL instead of reading the store.")
    var server: String?

    func run() async throws {
        if let server {
            var options = try ServerOptions.parse(["--server", server])
            options.token = nil
            let client = try options.client()
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let n42 = try await client.send("GET", "/api/v1/scans/\(scanId)/report.n42")
            try check(n42, "the N42.42 report")
            try n42.body.write(to: URL(fileURLWithPath: out).appendingPathComponent("\(scanId).n42"))
            if let status = n42.headers["scan-completeness"], status != "complete" {
                printIncomplete(status: status, path: "\(out)/\(scanId).n42")
                throw ExitCode(4)
            }
            for kind in ["json", "csv", "html"] {
                let reply = try await client.send("GET", "/api/v1/scans/\(scanId)/report.\(kind)")
                try check(reply, "the \(kind) report")
                try reply.body.write(to: URL(fileURLWithPath: out).appendingPathComponent("\(scanId).\(kind)"))
            }
            print("\(out)/\(scanId).html (and .json, .csv, .n42)")
            return
        }
        let written = try store.open().writeReports(scanId: scanId, to: out)
        guard let html = written.htmlPath, let verdict = written.export.verdict else {
            if case .incomplete(let status) = written.export.completeness { printIncomplete(status: status, path: written.n42Path) }
            throw ExitCode(4)
        }
        print("\(verdict.outcome.rawValue): \(html) (and .json, .csv, .n42)")
    }

    private func printIncomplete(status: String, path: String) {
        FileHandle.standardError.write(Data(("robotctl: scan \(scanId) has no verdict: it is \(status). Wrote only \(path), "
            + "its readings so far, marked INCOMPLETE; the JSON, CSV and HTML reports need a verdict.\n").utf8))
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the store: SQLite integrity, every hash chain, each finished scan's signed seal, its verdict, the audit trail.",
        discussion: """
            Exits 3 on any problem. Prints the audit head and the signing key: keep them (or the reports' seal lines) \
            somewhere else and pass them back with --anchors, which also catches a history that was rewritten and \
            re-signed on the robot itself.
            """)
    @OptionGroup var store: StoreOption
    @Option(help: "A file of heads held elsewhere: lines 'scan ID SEALHASH' (from reports) or 'audit SEQ HASH' (from an earlier verify).")
    var anchors: String?
    @Option(help: "Check signatures against this public key (hex, as verify prints it) instead of the key file beside the store.")
    var publicKey: String?
    @Flag(help: "Skip judging every finished scan again from its readings.")
    var noRecompute = false

    func run() throws {
        let opened = try store.open(createSigningKey: false)
        var anchorList: [ScanStore.Anchor] = []
        if let anchors {
            guard let data = FileManager.default.contents(atPath: anchors) else { throw ValidationError("cannot read --anchors '\(anchors)'") }
            anchorList = try ScanStore.Anchor.parse(String(decoding: data, as: UTF8.self))
        }
        let verifier = try publicKey.map { try ChainSigner(publicKeyHex: $0) }
        let report = try opened.verify(anchors: anchorList, verifier: verifier, recomputeVerdicts: !noRecompute)
        print("integrity \(report.integrity); \(report.scans) scans, \(report.readings) readings, \(report.auditEntries) audit entries; "
              + "\(report.seals) seals, \(report.verdictsRecomputed) verdicts recomputed, \(report.checkpoints) audit checkpoints, \(report.anchors) anchors")
        if let signer = verifier ?? opened.signer {
            print("signing key \(signer.keyId) public \(signer.publicKeyHex)")
        } else {
            print("PROBLEM: no signing key or --public-key: seal signatures not checked")
        }
        print("audit \(report.auditHeadSeq) \(report.auditHeadHash)")
        for problem in report.problems { print("PROBLEM: \(problem)") }
        if report.problemCount > report.problems.count {
            print("PROBLEM: \(report.problemCount - report.problems.count) more not listed (\(report.problemCount) in all)")
        }
        if !report.isValid || (verifier ?? opened.signer) == nil { throw ExitCode(3) }
        print("hash chains intact")
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Preview a scan plan as JSON before running it.")
    @Argument(help: "Container number (ISO 6346).")
    var container: String
    @Option(help: "Size-type: 22G1, 42G1, 45G1, L5G1.")
    var size = "42G1"
    @Option(help: "Profile file.")
    var profile = "profiles/snt0570-2007.yaml"

    @Option(help: "Also write a top-view picture of the plan (SVG) to this file.")
    var svg: String?

    @Option(help: "Where the probe sits on the robot: FORWARD,RIGHT,UP metres from its reference point (robotd's probe: section).")
    var probe = "0,0,0"

    func run() throws {
        let mountParts = probe.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard mountParts.count == 3, let f = mountParts[0], let r = mountParts[1], let u = mountParts[2] else {
            throw ValidationError("--probe '\(probe)' must be FORWARD,RIGHT,UP in metres, e.g. 0.15,0.45,0.05")
        }
        let mount = ProbeMount(forwardMetres: f, rightMetres: r, upMetres: u)
        let number: ContainerNumber
        do { number = try ContainerNumber(container) } catch { throw ValidationError(error.description) }
        guard let s = ContainerSize(name: size) else { throw ValidationError("--size '\(size)': allowed 22G1, 42G1, 45G1, L5G1") }
        let p: ProcedureProfile
        do { p = try ProcedureProfile.load(path: profile) } catch { throw ValidationError(error.description) }
        if let problem = mount.problems(standOffMetres: p.standOffMetres).first { throw ValidationError("--probe: \(problem)") }
        let plan = ScanPlan(container: ContainerPlacement(number: number, size: s, xMetres: 0, yMetres: 0), profile: p, probeMount: mount)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(plan), as: UTF8.self))
        if let svg { try plan.svg().write(toFile: svg, atomically: true, encoding: .utf8) }
        FileHandle.standardError.write(Data("\(plan.points.count) points, \(plan.waypoints.count) corner waypoints\n".utf8))
    }
}

struct Scan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scan a container: `scan start` through robotd, or `scan local` (the default) on a bus directly.",
        subcommands: [ScanStart.self, ScanLocal.self], defaultSubcommand: ScanLocal.self)
}

struct ScanLocal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Scan a container from the command line, driving the robot on a bus directly (for rigs and scripts).",
        discussion: "robotctl runs its own control loop for the scan, so robotd must not be driving the same bus. "
            + "An unfinished scan of the same container in the store is carried on, not restarted.")

    @Argument(help: "Container number (ISO 6346).")
    var container: String
    @OptionGroup var bus: BusOptions
    @Option(help: "Size-type: 22G1, 42G1, 45G1, L5G1.")
    var size = "42G1"
    @Option(help: "Door-end left corner and heading: x,y,heading (metres, degrees).")
    var at = "0,0,0"
    @Option(help: "Profile file.")
    var profile = "profiles/snt0570-2007.yaml"
    @Option(help: "SQLite store.")
    var store = "scans.sqlite"
    @Option(help: "Report directory.")
    var reports = "reports"
    @Option(help: "Officer recorded with the scan.")
    var officer = "officer"

    func run() async throws {
        let job: ContainerScanJob
        do {
            job = try ContainerScanJob.parse(number: container, size: size, at: at, profilePath: profile, storePath: store,
                                             reportDirectory: reports, robotId: "robotctl", officer: officer, timeScale: 1)
        } catch {
            throw ValidationError(error.description)
        }
        var configuration = ControlConfiguration()
        if let zone = job.keepOutZone { configuration.keepOutZones.append(zone) }
        let modbus = ModbusBus(configuration: BusConfiguration(endpoint: try bus.endpoint(), maxRetries: 1))
        let loop = ControlLoop(bus: modbus, configuration: configuration)
        do {
            try await loop.start()
        } catch {
            throw ValidationError(error.description)
        }
        var logger = Logger(label: "robotctl")
        logger.logLevel = .info
        await job.run(loop: loop, logger: logger)
        _ = await loop.run(.stop, timeout: 2)
        loop.stop()
        modbus.stop()
    }
}
