import CommandClient
import CommandServer
import Foundation
import RobotControl
import RobotTesting
import Testing

/// The motion lease, the deadman behind it, and e-stop, against the real loop and simulator.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct LeaseAndSafetyTests {
    @Test func motionNeedsTheLeaseAndARefusalSaysWhoHoldsIt() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        let olga = try await rig.client("olga")

        let noLease = try await otto.command(["type": "walk", "metres": 0.5])
        #expect(noLease.status == 409)
        #expect(noLease.errorCode == "lease_required")

        let granted = try await otto.acquireLease(client: "otto-phone")
        #expect(granted.status == 200, "\(granted.text)")
        #expect(granted.object["timeoutSeconds"] as? Double == 1.0)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }

        let conflict = try await olga.acquireLease(client: "olga-tablet")
        #expect(conflict.status == 409)
        #expect(conflict.errorCode == "lease_held")
        #expect(conflict.errorMessage?.contains("'otto' (otto-phone)") == true, "\(conflict.text)")
        #expect(conflict.errorMessage?.contains("supervisor") == true)
        // A command with someone else's lease (or none) is refused the same way.
        olga.leaseId = "made-up"
        let stolen = try await olga.command(["type": "walk", "metres": 0.5])
        #expect(stolen.status == 409)
        #expect(stolen.errorMessage?.contains("'otto' (otto-phone)") == true, "\(stolen.text)")
        // Even otto's real lease id does not work with olga's token.
        olga.leaseId = otto.leaseId
        let copied = try await olga.command(["type": "walk", "metres": 0.5])
        #expect(copied.status == 409, "\(copied.text)")
        #expect(copied.errorCode == "lease_held")
        #expect(try await olga.send("DELETE", "/api/v1/lease").status == 409, "only the holder can return the lease")

        // The holder walks; the robot moves.
        let walk = try await otto.command(["type": "walk", "metres": 0.3], wait: true)
        #expect(walk.object["state"] as? String == "done", "\(walk.text)")
        #expect(abs(rig.simulator.model.truth().x - (-11.7)) < 0.02)

        // Stop needs no lease (any operator may stop the robot).
        #expect(try await olga.command(["type": "stop"]).status == 202)

        // A supervisor takes it over; the old lease stops working at once; both are audited.
        let sam = try await rig.client("sam")
        let takeover = try await sam.send("POST", "/api/v1/lease/takeover", json: ["client": "control-room"])
        #expect(takeover.status == 200)
        #expect(takeover.object["previousHolder"] as? String == "otto")
        let after = try await otto.command(["type": "walk", "metres": 0.1])
        #expect(after.status == 409)
        #expect(after.errorMessage?.contains("'sam' (control-room)") == true, "\(after.text)")
        let audit = try rig.store.auditEntries(limit: 100)
        #expect(audit.contains { $0.action == "POST /api/v1/lease/takeover" && $0.actor == "sam" && $0.detail.contains("took over from otto (otto-phone)") })
        #expect(audit.contains { $0.action == "POST /api/v1/lease" && $0.actor == "olga" && $0.detail.contains("refused 409 lease_held") })
    }

    @Test func theRobotStopsWhenKeepAlivesCease() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive(periodSeconds: 0.2)
        // A long walk, then the phone goes quiet mid-walk.
        let walk = try await otto.command(["type": "walk", "metres": 6.0])
        #expect(walk.status == 202)
        #expect(await rig.waitFor(5) { rig.loop.snapshot().speedMetresPerSecond > 0.2 })
        keepAlive.cancel()
        let quietAt = Date()
        #expect(await rig.waitFor(3) { rig.loop.snapshot().stopCause != nil })
        let stoppedAfter = Date().timeIntervalSince(quietAt)
        guard case .deadman = rig.loop.snapshot().stopCause else {
            Issue.record("expected a deadman stop, got \(String(describing: rig.loop.snapshot().stopCause))")
            return
        }
        // Default 1 s after the last keep-alive (which was up to 0.2 s before going quiet).
        #expect(stoppedAfter > 0.7 && stoppedAfter < 1.6, "stopped \(stoppedAfter) s after the last keep-alive")
        #expect(await rig.waitFor(5) { abs(rig.simulator.model.truth().speedMetresPerSecond) < 0.001 })
        #expect(rig.simulator.model.truth().x < -12 + 6 - 0.5, "the walk must not have finished")
        // The stale lease is refused with what happened; the state shows it.
        let stale = try await otto.keepAlive()
        #expect(stale.status == 409)
        #expect(stale.errorCode == "lease_stale")
        #expect(stale.errorMessage?.contains("the robot stopped") == true)
        #expect(try await otto.state().safety.cause == .deadman)
        // Another operator may now take the stale lease.
        let olga = try await rig.client("olga")
        #expect(try await olga.acquireLease(client: "tablet").status == 200)
    }

    @Test func aViewerCanPressEstopAndOnlyAnOperatorWithTheLeaseCanReleaseIt() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }
        #expect(try await otto.command(["type": "walk", "metres": 6.0]).status == 202)
        #expect(await rig.waitFor(5) { rig.loop.snapshot().speedMetresPerSecond > 0.2 })

        let vera = try await rig.client("vera")
        let pressed = try await vera.send("POST", "/api/v1/estop")
        // The answer comes once the loop has latched the stop, not before.
        #expect(pressed.status == 200, "\(pressed.text)")
        #expect(pressed.object["latched"] as? Bool == true)
        #expect(rig.loop.snapshot().stopCause == .softwareEstop)
        #expect(await rig.waitFor(1) { !rig.simulator.model.truth().motionPowerOn })
        #expect(await rig.waitFor(5) { abs(rig.simulator.model.truth().speedMetresPerSecond) < 0.001 })

        // Releasing needs the lease: a viewer is refused by role, another operator by the lease.
        #expect(try await vera.send("POST", "/api/v1/estop/release").status == 403)
        let olga = try await rig.client("olga")
        let noLease = try await olga.send("POST", "/api/v1/estop/release")
        #expect(noLease.status == 409)
        #expect(noLease.errorMessage?.contains("'otto' (phone)") == true)
        let released = try await otto.send("POST", "/api/v1/estop/release")
        #expect(released.status == 202)
        #expect(await rig.waitFor(3) { rig.loop.snapshot().stopCause == nil })
        let audit = try rig.store.auditEntries(limit: 100)
        #expect(audit.contains { $0.action == "POST /api/v1/estop" && $0.actor == "vera" && $0.detail.hasPrefix("ok 200") && $0.detail.contains("latched") })
    }

    /// The e-stop rule: any token this robotd issued in the last 24 h may press it, even
    /// expired, logged out or of a removed user (stopping is always safe); a token it never
    /// issued, or none, is refused, and the refusal is said, never a silent success.
    @Test func anExpiredOrLoggedOutTokenCanStillPressEstop() async throws {
        let rig = try await ServerRig(tokenLifetimeSeconds: 1)
        let vera = try await rig.client("vera")
        try await Task.sleep(nanoseconds: 1_300_000_000)
        #expect(try await vera.send("GET", "/api/v1/state").status == 401, "the token has expired for everything else")
        let pressed = try await vera.send("POST", "/api/v1/estop")
        #expect(pressed.status == 200, "\(pressed.text)")
        #expect(pressed.object["latched"] as? Bool == true)
        #expect(rig.loop.snapshot().stopCause == .softwareEstop)

        // Released by an operator with the lease, then pressed again with a logged-out token
        // whose user has since been removed.
        let otto = try await rig.client("otto")
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        #expect(try await otto.send("POST", "/api/v1/estop/release").status == 202)
        #expect(await rig.waitFor(3) { rig.loop.snapshot().stopCause == nil })
        _ = try await otto.send("DELETE", "/api/v1/lease")
        let olga = try await rig.client("olga")
        #expect(try await olga.send("POST", "/api/v1/logout").isSuccess)
        try rig.store.removeUser(name: "olga", by: "test")
        let again = try await olga.send("POST", "/api/v1/estop")
        #expect(again.status == 200 && again.object["latched"] as? Bool == true, "\(again.text)")

        let stranger = try await rig.client("otto")
        let unknown = try await stranger.send("POST", "/api/v1/estop", token: .some("not-a-token-this-robotd-issued"))
        #expect(unknown.status == 401)
        let none = try await stranger.send("POST", "/api/v1/estop", token: .some(nil))
        #expect(none.status == 401)
        let audit = try rig.store.auditEntries(limit: 200)
        #expect(audit.filter { $0.action == "POST /api/v1/estop" && $0.detail.hasPrefix("ok 200") }.count == 2)
        #expect(audit.contains { $0.action == "POST /api/v1/estop" && $0.actor == "olga" })
    }

    /// An e-stop the loop does not latch is reported as not latched (503), never as done:
    /// here the loop thread has been stopped.
    @Test func anEstopTheLoopCannotLatchIsReportedAsRefused() async throws {
        let rig = try await ServerRig()
        let vera = try await rig.client("vera")
        rig.loop.stop()
        let pressed = try await vera.send("POST", "/api/v1/estop")
        #expect(pressed.status == 503 && pressed.errorCode == "estop_not_latched", "\(pressed.status) \(pressed.text)")
        #expect(pressed.errorMessage?.contains("red mushroom button") == true)
        let audit = try rig.store.auditEntries(limit: 50)
        #expect(audit.contains { $0.action == "POST /api/v1/estop" && $0.detail.hasPrefix("refused 503 estop_not_latched") })
    }
}
