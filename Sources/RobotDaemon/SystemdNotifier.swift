import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness and watchdog protocol (`sd_notify(3)`), without libsystemd: one
/// datagram per message to the `AF_UNIX` socket named by `NOTIFY_SOCKET`. Under a unit
/// with `Type=notify` robotd sends `READY=1` once the control loop runs and the command
/// server listens, `WATCHDOG=1` only while the loop is healthy (`LoopHealth`), and
/// `STOPPING=1` when it shuts down. Outside systemd (`NOTIFY_SOCKET` unset) every call
/// does nothing.
public final class SystemdNotifier: @unchecked Sendable {
    private let socketPath: String?
    /// The watchdog period systemd asked for (`WATCHDOG_USEC`), if it is for this process
    /// (`WATCHDOG_PID` unset or ours).
    public let watchdogInterval: Duration?
    private let lock = NSLock()

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        if let usecText = environment["WATCHDOG_USEC"], let usec = UInt64(usecText), usec > 0,
           environment["WATCHDOG_PID"].map({ Int32($0) == getpid() }) ?? true {
            watchdogInterval = .microseconds(Int64(min(usec, UInt64(Int64.max))))
        } else {
            watchdogInterval = nil
        }
    }

    /// True when systemd asked for notifications.
    public var isActive: Bool { socketPath != nil }

    /// Sends one message (lines `KEY=VALUE`). Returns false if it could not be sent; a
    /// failed notification is not a reason to stop the robot, so callers log and go on.
    @discardableResult
    public func send(_ message: String) -> Bool {
        guard let socketPath else { return false }
        return lock.withLock { Self.sendDatagram(message, to: socketPath) }
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public func status(_ text: String) { send("STATUS=\(text)") }
    public func stopping() { send("STOPPING=1\nSTATUS=shutting down: halting and parking") }
    public func feedWatchdog() { send("WATCHDOG=1") }

    private static func sendDatagram(_ message: String, to path: String) -> Bool {
        // A leading '@' names an abstract socket: its address starts with a NUL byte.
        var pathBytes = Array(path.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return false }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in pathBytes.enumerated() { raw[i] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes.first == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
        return sent == bytes.count
    }
}

/// Whether the control loop is healthy enough to feed systemd's watchdog: its real-time
/// thread must have ticked at least half the ticks the interval should hold. A loop that
/// hangs, dies or is starved stops the feeding, and systemd restarts robotd (the firmware's
/// own watchdog has by then already cut the drives: the loop no longer refreshes it).
/// A robot that is stopped (e-stop, lost link, fault) but whose loop ticks is healthy: the
/// loop is doing its job, and a restart would not help.
public struct LoopHealth: Sendable, Equatable {
    public let rateHertz: Double
    private var lastTick: UInt64?
    private var lastTime: ContinuousClock.Instant?

    public init(rateHertz: Double) {
        self.rateHertz = rateHertz
    }

    public enum Assessment: Sendable, Equatable {
        case healthy
        /// The loop made `ticks` of the `expected` ticks since the last assessment.
        case stalled(ticks: UInt64, expected: Double)
    }

    /// Compares the loop's tick counter with the last call's. The first call is healthy if
    /// the loop has ticked at all.
    public mutating func assess(tick: UInt64, at now: ContinuousClock.Instant) -> Assessment {
        defer {
            lastTick = tick
            lastTime = now
        }
        guard let lastTick, let lastTime else { return tick > 0 ? .healthy : .stalled(ticks: 0, expected: 1) }
        let elapsed = now - lastTime
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let expected = seconds * rateHertz
        let made = tick >= lastTick ? tick - lastTick : 0
        return Double(made) >= expected / 2 && made > 0 ? .healthy : .stalled(ticks: made, expected: expected)
    }
}

/// Sends `READY=1` once every part robotd waits for has started: the control loop, and
/// the command server unless it is off. Until then systemd keeps the unit "activating",
/// so `systemctl start robotd` returns only when officers can connect.
public final class DaemonReadiness: Sendable {
    public enum Part: String, Sendable {
        case controlLoop = "control loop running"
        case commandServer = "command server listening"
    }

    private let notifier: SystemdNotifier
    private let state: Mutex<(waiting: Set<Part>, details: [String])>

    public init(notifier: SystemdNotifier, waitingFor parts: Set<Part>) {
        self.notifier = notifier
        state = Mutex((parts, []))
    }

    /// Marks one part started; the last one sends `READY=1` with every part's detail.
    public func started(_ part: Part, detail: String) {
        let message: String? = state.withLock { value in
            guard value.waiting.remove(part) != nil else { return nil }
            value.details.append("\(part.rawValue) (\(detail))")
            return value.waiting.isEmpty ? value.details.joined(separator: "; ") : nil
        }
        if let message { notifier.ready(status: message) }
    }
}
