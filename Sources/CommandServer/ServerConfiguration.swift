import Foundation
import Inspection

/// The command server's settings (the `server:` section of robotd's configuration file).
public struct ServerConfiguration: Sendable, Equatable {
    /// 127.0.0.1 by default: reachable from this machine only. Use 0.0.0.0 with TLS on a real network.
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests).
    public var port = 8080
    /// PEM files; both set turns TLS on.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    public var telemetryRateHertz = 10.0
    public var tokenLifetimeSeconds = 8 * 3600.0
    public var loginMaxFailures = 5
    public var loginLockoutSeconds = 60.0
    public var profilesDirectory = "profiles"
    public var defaultProfile = "snt0570-2007"
    public var reportDirectory = "reports"
    public var robotId = "robot-1"
    /// Simulated seconds per wall second (the simulator's time scale), for scan settle times.
    public var timeScale = 1.0
    /// Where the probe sits on the robot: every plan puts the probe at the stand-off.
    public var probeMount = ProbeMount.atReferencePoint
    public var maxBodyBytes = 256 * 1024
    /// Plain HTTP on an address other than loopback sends passwords and tokens in clear
    /// over the port's Wi-Fi: refused unless this is set (then warned about).
    public var allowPlaintext = false
    /// Open connections at most (WebSockets counted apart); more are closed at once.
    public var maximumConnections = 2048
    /// A request's head and body must arrive within this; slower clients are closed.
    public var requestDeadlineSeconds = 10.0
    /// A connection with no traffic for this long is closed.
    public var idleTimeoutSeconds = 30.0
    /// Telemetry WebSockets at most, in all and per user.
    public var maximumWebSockets = 64
    public var maximumWebSocketsPerUser = 8
    /// Refusals of callers without a valid token go to the audit log as one entry per
    /// address per this interval.
    public var refusalLogIntervalSeconds = 60.0
    /// New scans are refused when the store's file system has less free space than this.
    public var minimumFreeDiskBytes: Int64 = 256 * 1024 * 1024
    /// Automated scans carry on this long without the officer's keep-alives (the phone's
    /// Wi-Fi gone), under the controller's own supervision; then they pause safely.
    public var scanCommsLossSeconds = 30.0

    public init() {}

    public var tlsEnabled: Bool { tlsCertificatePath != nil && tlsKeyPath != nil }

    /// 127.0.0.0/8, ::1 or localhost: reachable from this machine only.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Problems, each naming the key and what is allowed.
    public func problems() -> [String] {
        var found: [String] = []
        if !(0...65535).contains(port) { found.append("server.port \(port) must be 0 to 65535") }
        if (tlsCertificatePath == nil) != (tlsKeyPath == nil) {
            found.append("server.tlsCertificate and server.tlsKey must be given together")
        }
        if !(0.5...50).contains(telemetryRateHertz) { found.append("server.telemetryRateHertz must be 0.5 to 50") }
        if !(1...7 * 86400).contains(tokenLifetimeSeconds) { found.append("server.tokenLifetimeSeconds must be 1 to 604800") }
        if loginMaxFailures < 1 { found.append("server.loginMaxFailures must be at least 1") }
        if loginLockoutSeconds < 1 { found.append("server.loginLockoutSeconds must be at least 1") }
        if !isLoopback && !tlsEnabled && !allowPlaintext {
            found.append("server.host \(host) is not a loopback address and TLS is off: passwords and tokens would cross the network "
                         + "in clear. Set server.tlsCertificate and server.tlsKey, or (on a closed test network only) server.allowPlaintext: true")
        }
        if !(16...65_536).contains(maximumConnections) { found.append("server.maximumConnections must be 16 to 65536") }
        if !(1...300).contains(requestDeadlineSeconds) { found.append("server.requestDeadlineSeconds must be 1 to 300") }
        if !(1...3600).contains(idleTimeoutSeconds) { found.append("server.idleTimeoutSeconds must be 1 to 3600") }
        if !(1...4096).contains(maximumWebSockets) { found.append("server.maximumWebSockets must be 1 to 4096") }
        if !(1...maximumWebSockets).contains(maximumWebSocketsPerUser) { found.append("server.maximumWebSocketsPerUser must be 1 to maximumWebSockets") }
        if !(0.1...3600).contains(refusalLogIntervalSeconds) { found.append("server.refusalLogIntervalSeconds must be 0.1 to 3600") }
        if minimumFreeDiskBytes < 0 { found.append("server.minimumFreeDiskMegabytes must be 0 or more") }
        if !(0...600).contains(scanCommsLossSeconds) { found.append("safety.scanCommsLossSeconds must be 0 to 600") }
        return found
    }
}
