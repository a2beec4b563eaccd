import Foundation
import RobotDaemon
import RobotTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// systemd's notification protocol, the watchdog's health rule and `--check-config`,
/// without systemd: a real datagram socket stands in for systemd's.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(2))) struct DeploymentTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func theWatchdogIsFedOnlyWhileTheLoopTicks() {
        var health = LoopHealth(rateHertz: 100)
        let start = ContinuousClock.now
        #expect(health.assess(tick: 0, at: start) == .stalled(ticks: 0, expected: 1), "a loop that never ticked is not healthy")
        #expect(health.assess(tick: 100, at: start + .seconds(1)) == .healthy)
        // Half the expected ticks is the floor: 49 of 100 is a stall, 50 is not.
        #expect(health.assess(tick: 149, at: start + .seconds(2)) == .stalled(ticks: 49, expected: 100))
        #expect(health.assess(tick: 199, at: start + .seconds(3)) == .healthy)
        // A loop that stopped (thread dead, hung in a C call) is a stall however short the interval.
        #expect(health.assess(tick: 199, at: start + .milliseconds(3100)) == .stalled(ticks: 0, expected: 10))
    }

    @Test func notificationsReachTheSocketSystemdNames() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("notify").path
        let receiver = try DatagramReceiver(path: path)
        defer { receiver.close() }

        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"])
        #expect(notifier.isActive)
        #expect(notifier.watchdogInterval == .seconds(2))
        let readiness = DaemonReadiness(notifier: notifier, waitingFor: [.controlLoop, .commandServer])
        readiness.started(.controlLoop, detail: "100 Hz")
        notifier.feedWatchdog()
        readiness.started(.commandServer, detail: "http://127.0.0.1:8080/")
        readiness.started(.commandServer, detail: "again")
        notifier.stopping()
        let messages = receiver.drain()
        #expect(messages == [
            "WATCHDOG=1",
            "READY=1\nSTATUS=control loop running (100 Hz); command server listening (http://127.0.0.1:8080/)",
            "STOPPING=1\nSTATUS=shutting down: halting and parking",
        ], "READY=1 waits for both parts and is sent once")
    }

    @Test func outsideSystemdNothingIsSentAndAWatchdogForAnotherProcessIsIgnored() {
        #expect(!SystemdNotifier(environment: [:]).isActive)
        #expect(SystemdNotifier(environment: [:]).send("READY=1") == false)
        let other = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "\(getpid() + 1)"])
        #expect(other.watchdogInterval == nil)
        #expect(other.send("READY=1") == false, "a socket that does not exist is reported, not fatal")
    }

    @Test func checkConfigNamesWhatIsMissingOnTheMachine() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = DaemonConfiguration()
        configuration.storePath = "/var/lib/robotd/scans.sqlite"
        configuration.server.reportDirectory = "/var/lib/robotd/reports"
        configuration.server.profilesDirectory = "/etc/robotd/profiles"
        configuration.endpoint = .rtu(.path("/dev/robot-rs485"))
        let empty = ConfigurationCheck(configuration, root: root)
        #expect(empty.errors.map(\.message).contains { $0.hasPrefix("store: the directory /var/lib/robotd does not exist") })
        #expect(empty.errors.map(\.message).contains { $0.hasPrefix("server.reports: the directory /var/lib/robotd/reports does not exist") })
        #expect(empty.errors.map(\.message).contains { $0.hasPrefix("server.profiles: the default profile 'snt0570-2007'") })
        #expect(empty.findings.contains { $0.severity == .warning && $0.message.hasPrefix("bus.port: /dev/robot-rs485 does not exist yet") })

        let files = FileManager.default
        try files.createDirectory(atPath: root + "/var/lib/robotd/reports", withIntermediateDirectories: true)
        try files.createDirectory(atPath: root + "/etc/robotd/profiles", withIntermediateDirectories: true)
        let profile = try String(contentsOfFile: Self.repositoryRoot + "/profiles/snt0570-2007.yaml", encoding: .utf8)
        try profile.write(toFile: root + "/etc/robotd/profiles/snt0570-2007.yaml", atomically: true, encoding: .utf8)
        try "key".write(toFile: root + "/var/lib/robotd/scans.sqlite.signing-key", atomically: true, encoding: .utf8)
        try files.setAttributes([.posixPermissions: 0o644], ofItemAtPath: root + "/var/lib/robotd/scans.sqlite.signing-key")
        let keyOpen = ConfigurationCheck(configuration, root: root)
        #expect(keyOpen.errors.map(\.message) == ["store: the signing key /var/lib/robotd/scans.sqlite.signing-key is readable by others (mode 644); it must be 600"])
        try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: root + "/var/lib/robotd/scans.sqlite.signing-key")
        #expect(ConfigurationCheck(configuration, root: root).errors.isEmpty)
    }
}

/// A bound `AF_UNIX` datagram socket: what systemd listens on for `sd_notify`.
final class DatagramReceiver {
    private let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    /// Every datagram waiting, without blocking.
    func drain() -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard n > 0 else { return messages }
            messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
    }

    func close() { _ = Glibc.close(fd) }
}
