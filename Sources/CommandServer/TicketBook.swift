import Foundation
import Synchronization

/// One-time tickets for what cannot carry an Authorization header: the telemetry
/// WebSocket (browsers cannot set headers on one). A ticket is good for one request to
/// one path, within `lifetimeSeconds`, and stands for the session that asked for it; the
/// long-lived bearer token itself never goes into a URL, where history, proxies and
/// shared links would keep it.
final class TicketBook: Sendable {
    struct Entry {
        let token: String
        let path: String
        let expiresAt: Date
        var used = false
    }

    private let entries = Mutex<[String: Entry]>([:])
    let lifetimeSeconds = 60.0
    static let maximumEntries = 10_000

    /// A new ticket for `path`, standing for the bearer `token`.
    func issue(token: String, path: String, now: Date = Date()) -> String {
        var bytes = [UInt8](repeating: 0, count: 24)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let ticket = bytes.map { String(format: "%02x", $0) }.joined()
        entries.withLock { entries in
            if entries.count >= Self.maximumEntries { entries = entries.filter { $0.value.expiresAt > now } }
            if entries.count >= Self.maximumEntries {
                for key in entries.sorted(by: { $0.value.expiresAt < $1.value.expiresAt }).prefix(Self.maximumEntries / 2).map(\.key) {
                    entries[key] = nil
                }
            }
            entries[ticket] = Entry(token: token, path: path, expiresAt: now.addingTimeInterval(lifetimeSeconds))
        }
        return ticket
    }

    /// The token behind a ticket, once: for the path it was issued for, before it expires.
    func redeem(_ ticket: String, path: String, now: Date = Date()) -> String? {
        entries.withLock { entries in
            guard var entry = entries[ticket], !entry.used, entry.expiresAt > now, entry.path == path else { return nil }
            entry.used = true
            entries[ticket] = entry
            return entry.token
        }
    }

    /// The token behind a ticket already redeemed (the WebSocket's handler, after its upgrade).
    func redeemedToken(_ ticket: String) -> String? {
        entries.withLock { entries in entries[ticket].flatMap { $0.used ? $0.token : nil } }
    }
}

/// Free space on the file system holding a path.
enum DiskSpace {
    static func freeBytes(near path: String) -> Int64? {
        let directory = (path as NSString).deletingLastPathComponent
        var stats = statvfs()
        guard statvfs(directory.isEmpty ? "." : directory, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }
}

/// The free space where the store lives, looked at every few seconds: shown in telemetry
/// and metrics, and an alarm (log and audit) when it falls below the floor at which new
/// scans are refused.
final class DiskWatch: Sendable {
    private let state = Mutex<(freeBytes: Int64, low: Bool)>((Int64.max, false))

    var freeBytes: Int64 { state.withLock { $0.freeBytes } }
    var low: Bool { state.withLock { $0.low } }

    /// Updates the figure; true when it has just fallen below `minimum`.
    func refresh(path: String, minimum: Int64) -> Bool {
        guard let free = DiskSpace.freeBytes(near: path) else { return false }
        return state.withLock { s in
            let wasLow = s.low
            s = (free, free < minimum)
            return s.low && !wasLow
        }
    }
}
