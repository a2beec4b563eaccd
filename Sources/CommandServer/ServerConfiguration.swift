import Foundation

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
    public var maxBodyBytes = 256 * 1024

    public init() {}

    public var tlsEnabled: Bool { tlsCertificatePath != nil && tlsKeyPath != nil }

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
        return found
    }
}
