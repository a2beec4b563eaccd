import CommandClient
import CommandServer
import Foundation
import RobotTesting
import Testing

/// Locating a container through the API (`POST /api/v1/scans/{id}/register`, issue 18):
/// over a pty at 10×, on the askew, corrugated container of `yard-registration-40ft.yaml`,
/// from a placement typed in 0.9 m and 4° off.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct RegistrationAPITests {
    @Test func aDraftIsLocatedThenPlannedOnTheContainerAsMeasured() async throws {
        // The range pair polled every 10 ms: 100 ms of robot time at 10×, as on a robot, so
        // the pass walks at its full 0.25 m/s.
        let rig = try await ServerRig(timeScale: 10, scenarioFile: "hil/scenarios/yard-registration-40ft.yaml", keepOutZones: [],
                                      rangePollMilliseconds: 10)
        let otto = try await rig.client("otto")
        let planned = try await otto.send("POST", "/api/v1/scans", json: [
            "containerNumber": "MSKU9070323", "size": "42G1", "xMetres": 3.7, "yMetres": -2.6, "headingDegrees": 8, "profile": "demo"])
        let id = try #require(planned.object["id"] as? String)
        // It moves the robot: the lease first.
        let refused = try await otto.send("POST", "/api/v1/scans/\(id)/register")
        #expect(refused.status == 409 && refused.errorCode == "lease_required", "\(refused.text)")
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }
        let accepted = try await otto.send("POST", "/api/v1/scans/\(id)/register")
        #expect(accepted.status == 202, "\(accepted.text)")
        // While it walks the pass, the scan cannot start and a second registration is refused.
        #expect(try await otto.send("POST", "/api/v1/scans/\(id)/start").errorCode == "registration_running")
        #expect(try await otto.send("POST", "/api/v1/scans/\(id)/register").errorCode == "registration_running")
        var registration: [String: Any] = [:]
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline {
            try await Task.sleep(nanoseconds: 500_000_000)
            registration = try await otto.send("GET", "/api/v1/scans/\(id)").object["registration"] as? [String: Any] ?? [:]
            if registration["state"] as? String != "running" { break }
        }
        #expect(registration["state"] as? String == "done", "\(registration)")
        let measured = try #require(registration["measured"] as? [String: Any])
        let (x, y, heading) = (measured["xMetres"] as? Double ?? .nan, measured["yMetres"] as? Double ?? .nan, measured["headingDegrees"] as? Double ?? .nan)
        // The scenario's truth: door corner (3.0, -2.0), heading 12°.
        #expect(hypot(x - 3.0, y + 2.0) <= 0.05 && abs(heading - 12) <= 0.5, "\(measured)")
        // The plan is now on the measured container, and keeps the typed-in guess.
        let plan = try await otto.send("GET", "/api/v1/scans/\(id)/plan").object
        let container = try #require(plan["container"] as? [String: Any])
        #expect(abs((container["headingDegrees"] as? Double ?? 0) - heading) < 1e-9)
        let declared = (plan["registration"] as? [String: Any])?["declared"] as? [String: Any]
        #expect(declared?["xMetres"] as? Double == 3.7, "\(String(describing: declared))")
        // The audit log says who located it and where.
        let audit = try rig.store.auditEntries(limit: 50).map(\.action)
        #expect(audit.contains("container.register"), "\(audit)")
    }
}
