import ArgumentParser
import Foundation
import InspectionStore

// robotctl backup: a verified copy of the store, for the deployment's daily timer.

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back the store up while robotd runs, then verify the copy; keep the newest --keep backups.",
        discussion: """
            SQLite's online backup copies the store into a new folder under --to (robotd-TIME), with the audit \
            checkpoints and the public key, never the private signing key. The copy is then checked as `robotctl verify` \
            checks a store: integrity, every hash chain, every seal against the public key, every verdict judged again. \
            A copy that fails is renamed unverified-… and the command exits 3. The deployment's robotd-backup.timer runs \
            this daily.
            """)
    @OptionGroup var store: StoreOption
    @Option(help: "Folder that holds the backups.")
    var to: String
    @Option(help: "How many verified backups to keep (the newest).")
    var keep = 14

    func run() throws {
        guard keep >= 1 else { throw ValidationError("--keep must be at least 1, got \(keep)") }
        let live = try store.open(createSigningKey: false)
        guard let publicKey = live.signer?.publicKeyHex else {
            throw ValidationError("no signing key beside \(store.store): a backup could not be verified; run robotd once to create it")
        }
        let backup = try live.backup(into: to)
        let copy = try ScanStore(path: backup.databasePath, createSigningKey: false)
        let report = try copy.verify(verifier: try ChainSigner(publicKeyHex: publicKey), recomputeVerdicts: true)
        print("backup \(backup.directory): integrity \(report.integrity); \(report.scans) scans, \(report.readings) readings, "
              + "\(report.auditEntries) audit entries, \(report.seals) seals, \(report.verdictsRecomputed) verdicts recomputed")
        print("audit \(report.auditHeadSeq) \(report.auditHeadHash)")
        guard report.isValid else {
            for problem in report.problems { print("PROBLEM: \(problem)") }
            let parent = (backup.directory as NSString).deletingLastPathComponent
            let failed = (parent as NSString).appendingPathComponent("unverified-" + (backup.directory as NSString).lastPathComponent)
            try? FileManager.default.moveItem(atPath: backup.directory, toPath: failed)
            print("the copy did not verify: kept as \(failed), older backups left in place")
            throw ExitCode(3)
        }
        for removed in try ScanStore.pruneBackups(in: to, keep: keep) { print("removed old backup \(removed)") }
        print("backup verified")
    }
}
