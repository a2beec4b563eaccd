import CommandServer
import Foundation
import RobotIO

/// `robotd --check-config`: what a parsed configuration still needs from the machine
/// before robotd can run with it (the parse itself checks every key and range). The
/// install script runs it on the configuration it leaves; a site runs it after an edit.
/// Errors stop robotd from doing its job; warnings are things a site may fix later (the
/// RS-485 adapter not plugged in yet, plain HTTP on a closed network).
public struct ConfigurationCheck: Sendable {
    public enum Severity: String, Sendable { case error, warning, note }

    public struct Finding: Sendable, Equatable, CustomStringConvertible {
        public let severity: Severity
        public let message: String
        public var description: String { "\(severity.rawValue): \(message)" }
    }

    public let findings: [Finding]
    public var errors: [Finding] { findings.filter { $0.severity == .error } }

    /// Checks `configuration` against the file system. `root` prefixes every absolute
    /// path (a configuration installed into a staging tree, as the install test does).
    public init(_ configuration: DaemonConfiguration, root: String = "/") {
        let files = FileManager.default
        var found: [Finding] = []
        func onMachine(_ path: String) -> String {
            guard root != "/", path.hasPrefix("/") else { return path }
            return (root as NSString).appendingPathComponent(path)
        }
        func directory(of path: String) -> String {
            let parent = (path as NSString).deletingLastPathComponent
            return parent.isEmpty ? "." : parent
        }
        func writableDirectory(_ path: String, for role: String) {
            var isDirectory: ObjCBool = false
            let local = onMachine(path)
            if !files.fileExists(atPath: local, isDirectory: &isDirectory) || !isDirectory.boolValue {
                found.append(Finding(severity: .error, message: "\(role): the directory \(path) does not exist; create it writable by robotd's user"))
            } else if !files.isWritableFile(atPath: local) {
                found.append(Finding(severity: .error, message: "\(role): the directory \(path) is not writable by this user (uid \(getuid()))"))
            }
        }

        writableDirectory(directory(of: configuration.storePath), for: "store")
        let store = onMachine(configuration.storePath)
        if files.fileExists(atPath: store), !files.isWritableFile(atPath: store) {
            found.append(Finding(severity: .error, message: "store: \(configuration.storePath) exists but is not writable by this user"))
        }
        let key = store + ".signing-key"
        if files.fileExists(atPath: key), let attributes = try? files.attributesOfItem(atPath: key),
           let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            found.append(Finding(severity: .error, message: "store: the signing key \(configuration.storePath).signing-key is readable by others "
                                 + "(mode \(String(mode, radix: 8))); it must be 600"))
        }

        let server = configuration.server
        writableDirectory(server.reportDirectory, for: "server.reports")
        let profiles = ProfileLibrary(directory: onMachine(server.profilesDirectory), defaultName: server.defaultProfile)
        do {
            _ = try profiles.load(nil)
        } catch {
            found.append(Finding(severity: .error, message: "server.profiles: the default profile '\(server.defaultProfile)' "
                                 + "in \(server.profilesDirectory) cannot be used: \(error.message)"))
        }
        for (name, path) in [("server.tlsCertificate", server.tlsCertificatePath), ("server.tlsKey", server.tlsKeyPath)] {
            guard let path else { continue }
            if !files.isReadableFile(atPath: onMachine(path)) {
                found.append(Finding(severity: .error, message: "\(name): \(path) is missing or not readable by this user"))
            }
        }
        if !server.isLoopback && !server.tlsEnabled {
            found.append(Finding(severity: .warning, message: "server.host \(server.host) serves plain HTTP off this machine (allowPlaintext)"))
        }
        if case .rtu(let selector, _, _, _, _) = configuration.endpoint.transport, case .path(let path) = selector,
           !files.fileExists(atPath: onMachine(path)) {
            found.append(Finding(severity: .warning, message: "bus.port: \(path) does not exist yet (is the RS-485 adapter plugged in, "
                                 + "and its udev rule installed?); robotd reports the robot's units as lost until it appears"))
        }
        if let problem = configuration.lineBudget?.problem {
            found.append(Finding(severity: .warning, message: "polls: \(problem)"))
        }
        if let fitted = configuration.pollsFitted {
            found.append(Finding(severity: .note, message: "polls: \(fitted)"))
        }
        if let budget = configuration.lineBudget {
            found.append(Finding(severity: .note, message: "line budget: \(budget)"))
        }
        found.append(Finding(severity: .note, message: String(
            format: "watchdog budget: with one unit silent a refresh comes at most %.0f ms after the last; the firmware allows %d ms",
            configuration.worstRefreshGapMilliseconds, Int(configuration.control.watchdogTimeoutMilliseconds))))
        findings = found
    }
}
