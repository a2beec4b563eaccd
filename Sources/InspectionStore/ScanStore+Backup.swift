import Foundation
import GRDB

extension ScanStore {
    /// What one backup wrote.
    public struct Backup: Sendable {
        /// The folder of this backup: the database copy, its audit checkpoints and the
        /// public half of the signing key (never the private key).
        public let directory: String
        public let databasePath: String
        public let publicKeyHex: String?
    }

    /// Copies the store while robotd keeps writing to it: SQLite's online backup (a
    /// consistent snapshot, in pages, that never blocks the writer for long), the audit
    /// checkpoints file as it was after the copy, and the public key to verify the copy
    /// with. The copy goes to `parent/NAME` (a new folder, named by the UTC time), first
    /// into a hidden folder that is renamed when complete, so a crash mid-backup leaves
    /// no half backup under a real name.
    public func backup(into parent: String, now: Date = Date()) throws -> Backup {
        let files = FileManager.default
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withYear, .withMonth, .withDay, .withTime, .withTimeZone]
        let name = "robotd-" + formatter.string(from: now).replacingOccurrences(of: ":", with: "")
        let final = (parent as NSString).appendingPathComponent(name)
        let staging = (parent as NSString).appendingPathComponent(".partial-" + name)
        guard !files.fileExists(atPath: final) else { throw Failure(description: "a backup named \(final) already exists") }
        try? files.removeItem(atPath: staging)
        do {
            try files.createDirectory(atPath: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw Failure(description: "cannot create the backup folder \(staging): \(error.localizedDescription)")
        }
        let base = (path as NSString).lastPathComponent
        let copyPath = (staging as NSString).appendingPathComponent(base)
        do {
            let copy = try DatabaseQueue(path: copyPath)
            try pool.backup(to: copy)
            try copy.close()
        } catch {
            try? files.removeItem(atPath: staging)
            throw Failure(description: "the online backup of \(path) failed: \(error)")
        }
        if files.fileExists(atPath: checkpointPath) {
            do {
                try files.copyItem(atPath: checkpointPath, toPath: copyPath + ".checkpoints")
            } catch {
                try? files.removeItem(atPath: staging)
                throw Failure(description: "cannot copy the audit checkpoints \(checkpointPath): \(error.localizedDescription)")
            }
        }
        if let signer {
            try? Data((signer.publicKeyHex + "\n").utf8).write(to: URL(fileURLWithPath: copyPath + ".public-key"))
        }
        do {
            try files.moveItem(atPath: staging, toPath: final)
        } catch {
            throw Failure(description: "cannot rename the finished backup to \(final): \(error.localizedDescription)")
        }
        return Backup(directory: final, databasePath: (final as NSString).appendingPathComponent(base), publicKeyHex: signer?.publicKeyHex)
    }

    /// Removes all but the newest `keep` backups in `parent` (folders named `robotd-…`,
    /// newest by name), and any half backup left by a crash. Returns what it removed.
    public static func pruneBackups(in parent: String, keep: Int) throws -> [String] {
        let files = FileManager.default
        let names = (try? files.contentsOfDirectory(atPath: parent)) ?? []
        let partial = names.filter { $0.hasPrefix(".partial-robotd-") }
        let backups = names.filter { $0.hasPrefix("robotd-") }.sorted(by: >)
        let removed = partial + backups.dropFirst(max(keep, 1))
        for name in removed {
            try files.removeItem(atPath: (parent as NSString).appendingPathComponent(name))
        }
        return removed
    }
}
