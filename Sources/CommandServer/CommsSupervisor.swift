import Foundation
import InspectionStore
import Logging
import RobotControl
import ServiceLifecycle
import Synchronization

/// The comms-loss policy (after Spot's): manual motion stops when the officer's phone
/// goes silent for the deadman timeout, as the control loop's deadman does; an automated
/// scan carries on under its own supervision for up to `scanCommsLossSeconds` without
/// keep-alives (a Wi-Fi gap on the quay), and beyond that pauses safely: the axes halt
/// where they are and the scan waits, paused with its reason, for the officer to take the
/// lease again and resume (one action in the UI). The scan's own supervision is this
/// process running its executor: the loop's deadman is fed here while the scan runs and
/// the grace lasts, and the firmware watchdog still stops the robot if robotd dies. A
/// lease taken over by someone else pauses the scan too.
final class CommsSupervisor: Sendable {
    let desk: ScanDesk
    let lease: MotionLease
    let loop: ControlLoop
    let store: ScanStore
    let graceSeconds: Double
    let logger: Logger
    /// The user whose lease the running scan goes on under, by scan id.
    private let driver = Mutex<(scan: String, user: String)?>(nil)

    init(desk: ScanDesk, lease: MotionLease, loop: ControlLoop, store: ScanStore, graceSeconds: Double, logger: Logger) {
        self.desk = desk
        self.lease = lease
        self.loop = loop
        self.store = store
        self.graceSeconds = graceSeconds
        self.logger = logger
    }

    /// The stop cause seen last, to log and audit each new safety stop once.
    private let lastCause = Mutex<String?>(nil)

    /// One look, every 50 ms.
    func check(now: Date = Date()) async {
        let cause = loop.snapshot().stopCause
        let changed: Bool = lastCause.withLock { last in
            let now = cause.map { "\($0)" }
            defer { last = now }
            return now != last && now != nil
        }
        if changed, let cause {
            logger.warning("safety stop", metadata: ["cause": "\(cause)"])
            try? await store.recordAudit(actor: "robotd", action: "robot.stop", detail: "\(cause)")
        }
        guard let active = desk.active, !active.progress.paused, active.progress.phase != .done else {
            lease.scanGraceSeconds.withLock { $0 = 0 }
            driver.withLock { $0 = nil }
            return
        }
        lease.scanGraceSeconds.withLock { $0 = graceSeconds }
        guard let holder = lease.current else { return }
        let driving = driver.withLock { current -> String in
            if current?.scan != active.id { current = (active.id, holder.user) }
            return current?.user ?? holder.user
        }
        if holder.user != driving {
            await pause(active.id, reason: "control taken over by \(holder.user) (\(holder.client)); resume to carry on", now: now)
            return
        }
        let silent = now.timeIntervalSince(holder.lastKeepAlive)
        if silent <= graceSeconds {
            // The scan supervises itself through the gap: the loop's deadman is fed here.
            loop.keepAlive()
        } else {
            await pause(active.id, reason: String(format: "comms lost: no keep-alive from %@'s phone for %.1f s (limit %.0f s); "
                                                  + "take control and resume", holder.user, silent, graceSeconds), now: now)
        }
    }

    private func pause(_ scanId: String, reason: String, now: Date) async {
        guard let session = try? desk.running(scanId) else { return }
        session.executor.pause(reason: reason)
        loop.requestHalt(inhibitMotion: false)
        // Halted and paused, nothing moves until the officer takes the lease again (which
        // arms the deadman again); a deadman trip now would only add a reset to the resume.
        loop.armDeadman(false)
        lease.scanGraceSeconds.withLock { $0 = 0 }
        logger.warning("scan paused", metadata: ["scan": "\(scanId)", "reason": "\(reason)"])
        try? await store.recordAudit(actor: "robotd", action: "scan.pause", detail: "\(scanId): \(reason)")
    }
}

struct CommsSupervisorService: Service {
    let supervisor: CommsSupervisor
    let minimumFreeDiskBytes: Int64

    func run() async throws {
        let supervisor = self.supervisor, minimum = minimumFreeDiskBytes
        await cancelWhenGracefulShutdown {
            var looks = 0
            while !Task.isCancelled {
                await supervisor.check()
                // The disk every 10 s: an alarm when the store's space falls below the floor.
                if looks % 200 == 0 { await supervisor.checkDisk(minimum: minimum) }
                looks += 1
                try? await Task.sleep(nanoseconds: 50_000_000)
            }
        }
    }
}

extension CommsSupervisor {
    func checkDisk(minimum: Int64) async {
        let store = self.store, desk = self.desk
        let fell = await Task.detached { desk.disk.refresh(path: store.path, minimum: minimum) }.value
        guard fell else { return }
        let free = desk.disk.freeBytes / 1_048_576
        logger.critical("disk nearly full where the store is: new scans are refused until space is freed",
                        metadata: ["freeMegabytes": "\(free)", "floorMegabytes": "\(minimum / 1_048_576)"])
        try? await store.recordAudit(actor: "robotd", action: "disk.low", detail: "\(free) MiB free, floor \(minimum / 1_048_576) MiB")
    }
}
