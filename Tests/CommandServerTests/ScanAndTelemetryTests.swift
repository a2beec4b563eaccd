import CommandClient
import CommandServer
import Foundation
import Logging
import Synchronization
import RobotTesting
import Testing

/// A whole scan driven through the API, watched over the WebSocket, with the verdict and
/// reports fetched at the end; and the telemetry stream itself.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct ScanAndTelemetryTests {
    @Test func aScanRunThroughTheAPIEndsWithAVerdictAndReports() async throws {
        let rig = try await ServerRig(timeScale: 10, scenarioFile: "hil/scenarios/cs137-40ft.yaml")
        let otto = try await rig.client("otto")
        let planned = try await otto.send("POST", "/api/v1/scans", json: [
            "containerNumber": "MSKU9070323", "size": "42G1", "xMetres": 0, "yMetres": 0, "headingDegrees": 0, "profile": "demo"])
        #expect(planned.status == 201, "\(planned.text)")
        let id = try #require(planned.object["id"] as? String)
        let points = try #require(planned.object["points"] as? Double)
        // The preview, as JSON and as a picture.
        let plan = try await otto.send("GET", "/api/v1/scans/\(id)/plan")
        #expect((plan.object["points"] as? [Any])?.count == Int(points))
        let svg = try await otto.send("GET", "/api/v1/scans/\(id)/plan.svg")
        #expect(svg.text.hasPrefix("<svg") || svg.text.contains("<svg"))
        // Starting needs the lease.
        let refused = try await otto.send("POST", "/api/v1/scans/\(id)/start")
        #expect(refused.status == 409)
        #expect(refused.errorCode == "lease_required")
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }

        // Watch the telemetry for scan progress while it runs.
        let progressSeen = Mutex(0)
        let watcher = Task {
            try await otto.watch { text in
                struct Message: Decodable { let type: String; let data: TelemetryFrame? }
                if let message = try? APICoding.decoder().decode(Message.self, from: Data(text.utf8)), message.type == "telemetry",
                   let scan = message.data?.scan, scan.progress.totalPoints > 0 {
                    progressSeen.withLock { $0 += 1 }
                }
                return !Task.isCancelled
            }
        }
        defer { watcher.cancel() }
        let started = try await otto.send("POST", "/api/v1/scans/\(id)/start")
        #expect(started.status == 202, "\(started.text)")
        // Officer commands other than stop are refused while the scan drives the robot.
        let busy = try await otto.command(["type": "walk", "metres": 1])
        #expect(busy.status == 409)
        #expect(busy.errorCode == "scan_running")
        // Pause and resume on the way.
        #expect(try await otto.send("POST", "/api/v1/scans/\(id)/pause").status == 200)
        let paused = try await otto.send("GET", "/api/v1/scans/\(id)")
        #expect(paused.object["state"] as? String == "paused")
        #expect(try await otto.send("POST", "/api/v1/scans/\(id)/resume").status == 200)

        let deadline = Date().addingTimeInterval(240)
        var status: [String: Any] = [:]
        while Date() < deadline {
            status = try await otto.send("GET", "/api/v1/scans/\(id)").object
            if let state = status["state"] as? String, state != "running", state != "paused" { break }
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        #expect(status["state"] as? String == "done", "\(status)")
        #expect(status["outcome"] as? String == "exceeds")
        #expect(progressSeen.withLock { $0 } > 5, "telemetry frames with scan progress")

        let result = try await otto.send("GET", "/api/v1/scans/\(id)/result")
        #expect(result.object["outcome"] as? String == "exceeds")
        let heat = try await otto.send("GET", "/api/v1/scans/\(id)/points")
        let measured = (heat.json as? [[String: Any]])?.filter { $0["grossMicrosievertsPerHour"] is Double }.count
        #expect(measured == Int(points))
        let html = try await otto.send("GET", "/api/v1/scans/\(id)/report.html")
        #expect(html.status == 200)
        #expect(html.text.contains("MSKU9070323"))
        let csv = try await otto.send("GET", "/api/v1/scans/\(id)/report.csv")
        #expect(csv.headers["content-disposition"]?.contains("attachment") == true)
        // The N42.42 document: complete, with the alarm of an "exceeds" verdict.
        let n42 = try await otto.send("GET", "/api/v1/scans/\(id)/report.n42")
        #expect(n42.status == 200 && n42.headers["scan-completeness"] == "complete")
        #expect(n42.text.contains("<RadAlarm") && n42.text.contains("xmlns=\"http://physics.nist.gov/N42/2011/N42\""))
        #expect(try await otto.send("GET", "/api/v1/scans/no-such-scan/report.n42").status == 404)
        let computed = try await otto.send("POST", "/api/v1/compute", json: ["scanId": id])
        #expect(computed.object["outcome"] as? String == "exceeds")
        // The store holds it all and verifies; the scan's start is audited with its officer.
        #expect(try rig.store.verify().isValid)
        #expect(try rig.store.auditEntries(limit: 500).contains { $0.actor == "otto" && $0.action == "POST /api/v1/scans/{id}/start" })
    }

    /// A link lost during the background, at a point, or during a re-measure stops the
    /// robot; the officer's one resetFault through the API (with the lease) clears it and
    /// the same scan carries on by itself. It used to be refused ("pause or abort it
    /// first"), also after pausing.
    @Test(arguments: ["background", "point", "remeasure"])
    func aScanStoppedByALostLinkCarriesOnAfterTheOfficersReset(phase: String) async throws {
        let rig = try await ServerRig(timeScale: 10, scenarioFile: "hil/scenarios/cs137-40ft.yaml")
        let otto = try await rig.client("otto")
        let planned = try await otto.send("POST", "/api/v1/scans", json: [
            "containerNumber": "MSKU9070323", "size": "42G1", "xMetres": 0, "yMetres": 0, "headingDegrees": 0, "profile": "demo"])
        let id = try #require(planned.object["id"] as? String)
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }
        #expect(try await otto.send("POST", "/api/v1/scans/\(id)/start").status == 202)
        func progress() async throws -> [String: Any] {
            (try await otto.send("GET", "/api/v1/scans/\(id)").object["progress"] as? [String: Any]) ?? [:]
        }
        // Wait for the phase, then pull the link for 1.5 s.
        var deadline = Date().addingTimeInterval(180)
        var exceedingPoint: Int?
        while Date() < deadline {
            let p = try await progress()
            if phase == "background", p["phase"] as? String == "background", (p["backgroundReadings"] as? Double ?? 0) >= 1 { break }
            if phase == "point", p["phase"] as? String == "survey" { break }
            if phase == "remeasure" {
                // A point above background + 0.25: its re-measure starts at once.
                let readings = (try? rig.store.readings(scanId: id)) ?? []
                let background = readings.filter { $0.kind == .background }.map(\.reading.grossDoseRate)
                let mean = background.isEmpty ? 1 : background.reduce(0, +) / Double(background.count)
                if let hot = readings.first(where: { $0.kind == .point && $0.reading.grossDoseRate > mean + 0.3 }) {
                    exceedingPoint = hot.pointIndex
                    break
                }
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        rig.simulator.faults.enqueue(.linkDrop(milliseconds: 1500))
        deadline = Date().addingTimeInterval(20)
        var waiting: String?
        while Date() < deadline, waiting == nil {
            waiting = (try await progress())["waitingForReset"] as? String
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        // The lost link, or the firmware watchdog it lets expire: either way a stop that waits for a person.
        #expect(waiting != nil, "\(phase): the scan waits for a reset")
        let pointsAtStop = (try await progress())["completedPoints"] as? Double ?? 0
        // Once the link is back, one reset through the API; the scan is not paused or aborted.
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let reset = try await otto.command(["type": "resetFault"], wait: true)
        #expect(reset.status == 200 && reset.object["state"] as? String == "done", "\(phase): \(reset.text)")
        // Other commands are still refused while the scan drives, with what is allowed.
        let busy = try await otto.command(["type": "walk", "metres": 1])
        #expect(busy.status == 409 && busy.errorMessage?.contains("resetFault") == true)
        if phase == "remeasure" {
            // Through to the end: the point was re-measured and the scan judged.
            deadline = Date().addingTimeInterval(240)
            var state = ""
            while Date() < deadline {
                state = try await otto.send("GET", "/api/v1/scans/\(id)").object["state"] as? String ?? ""
                if state != "running" && state != "paused" { break }
                try await Task.sleep(nanoseconds: 500_000_000)
            }
            #expect(state == "done")
            let readings = try rig.store.readings(scanId: id)
            #expect(readings.contains { $0.kind == .remeasure && $0.pointIndex == exceedingPoint }, "the re-measure was taken")
            #expect(try rig.store.verify().isValid)
        } else {
            deadline = Date().addingTimeInterval(60)
            var after: [String: Any] = [:]
            while Date() < deadline {
                after = try await progress()
                if after["waitingForReset"] == nil || after["waitingForReset"] is NSNull,
                   (after["completedPoints"] as? Double ?? 0) >= pointsAtStop + 2 { break }
                try await Task.sleep(nanoseconds: 200_000_000)
            }
            #expect((after["completedPoints"] as? Double ?? 0) >= pointsAtStop + 2, "\(phase): the scan carried on: \(after)")
            _ = try await otto.send("POST", "/api/v1/scans/\(id)/abort")
        }
    }

    /// The comms-loss policy: an automated scan rides out a gap in the phone's keep-alives
    /// shorter than `scanCommsLossSeconds` (the phone's keep-alives are taken again after
    /// it), pauses with the reason past it, and carries on after one resume with the lease.
    /// (`scripts/comms_loss.py` does the same over a real link with packet loss.)
    @Test func aScanRidesOutAShortCommsGapAndPausesSafelyAfterALongOne() async throws {
        let rig = try await ServerRig(timeScale: 10, scenarioFile: "hil/scenarios/cs137-40ft.yaml") { $0.scanCommsLossSeconds = 3 }
        let otto = try await rig.client("otto")
        let planned = try await otto.send("POST", "/api/v1/scans", json: [
            "containerNumber": "MSKU9070323", "size": "42G1", "xMetres": 0, "yMetres": 0, "headingDegrees": 0, "profile": "demo"])
        let id = try #require(planned.object["id"] as? String)
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        var keepAlive = otto.keepLeaseAlive()
        #expect(try await otto.send("POST", "/api/v1/scans/\(id)/start").status == 202)
        func status() async throws -> [String: Any] { try await otto.send("GET", "/api/v1/scans/\(id)").object }
        func points() async throws -> Double { ((try await status())["progress"] as? [String: Any])?["completedPoints"] as? Double ?? 0 }
        var deadline = Date().addingTimeInterval(120)
        while Date() < deadline, try await points() < 1 { try await Task.sleep(nanoseconds: 200_000_000) }

        // A 1.8 s gap: longer than the 1 s deadman, shorter than the 3 s grace.
        keepAlive.cancel()
        try await Task.sleep(nanoseconds: 1_800_000_000)
        #expect(rig.loop.snapshot().stopCause == nil, "no deadman stop during a scan's grace")
        #expect(try await otto.keepAlive().status == 200, "the phone's keep-alives are taken again")
        keepAlive = otto.keepLeaseAlive()
        let before = try await points()
        deadline = Date().addingTimeInterval(30)
        while Date() < deadline, try await points() < before + 1 { try await Task.sleep(nanoseconds: 200_000_000) }
        #expect(try await points() >= before + 1, "the scan carried on")

        // A gap past the grace: paused with the reason, halted, no safety stop to reset.
        keepAlive.cancel()
        deadline = Date().addingTimeInterval(10)
        var paused: [String: Any] = [:]
        while Date() < deadline {
            paused = try await status()
            if paused["state"] as? String == "paused" { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let reason = (paused["progress"] as? [String: Any])?["pausedReason"] as? String
        #expect(reason?.hasPrefix("comms lost") == true, "\(paused)")
        #expect(await rig.waitFor(3) { abs(rig.simulator.model.truth().speedMetresPerSecond) < 0.001 })
        #expect(rig.loop.snapshot().stopCause == nil)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        #expect(try await status()["state"] as? String == "paused")

        // Back: take the lease again and resume (the UI's one Resume button does both).
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }
        #expect(try await otto.send("POST", "/api/v1/scans/\(id)/resume").status == 200)
        let atResume = try await points()
        deadline = Date().addingTimeInterval(30)
        while Date() < deadline, try await points() < atResume + 1 { try await Task.sleep(nanoseconds: 200_000_000) }
        #expect(try await points() >= atResume + 1)
        _ = try await otto.send("POST", "/api/v1/scans/\(id)/abort")
    }

    @Test func telemetryStreamsStateAndCommandFeedbackAndNeedsAToken() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        let frames = Mutex<[String]>([])
        let watcher = Task {
            try await otto.watch { text in
                let count = frames.withLock { $0.append(text); return $0.count }
                return count < 40 && !Task.isCancelled
            }
        }
        // Command only once the socket is open (its first frame arrived), not after a guess.
        let opened = Date()
        while Date().timeIntervalSince(opened) < 10, frames.withLock({ $0.isEmpty }) {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        try #require(frames.withLock { !$0.isEmpty }, "no telemetry within 10 s of opening the socket")
        _ = try await otto.command(["type": "measure", "seconds": 0.5])
        let started = Date()
        while Date().timeIntervalSince(started) < 8, frames.withLock({ $0.count }) < 40 {
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        watcher.cancel()
        let all = frames.withLock { $0 }
        let telemetry = all.filter { $0.contains("\"type\":\"telemetry\"") }
        #expect(telemetry.count >= 20)
        // Every frame decodes as the shared wire type (RobotAPI.TelemetryFrame), and the
        // fields that may be empty are sent as null, not left out.
        struct Message: Decodable { let type: String; let data: TelemetryFrame }
        for text in telemetry {
            let message = try APICoding.decoder().decode(Message.self, from: Data(text.utf8))
            #expect(message.type == "telemetry")
            #expect(message.data.devices.chassis.state != nil)
        }
        // The line budget as measured: each unit's status age, from the frames sent after
        // the bus has polled for a while (at 20 ms polls it cannot be far above 20 ms).
        let last = try APICoding.decoder().decode(Message.self, from: Data(try #require(telemetry.last).utf8)).data
        let age = try #require(last.devices.safety.statusAgeP99Milliseconds)
        #expect(age > 1 && age < 200, "safety status age p99 \(age) ms")
        let first = try #require(telemetry.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        let data = try #require(first["data"] as? [String: Any])
        #expect(Set(data.keys) == ["tick", "pose", "lift", "dose", "devices", "safety", "loop", "lease", "store", "people", "scan"])
        let people = try #require(data["people"] as? [String: Any])
        #expect(people["scanner"] as? String == "clear", "the simulator's chassis has a protective-field scanner: \(people)")
        #expect(people["protectiveField"] is [String: Any] && people["warningField"] is [String: Any], "\(people)")
        #expect(data["scan"] is NSNull, "no scan under way: null, not missing")
        #expect(Set((data["safety"] as? [String: Any] ?? [:]).keys).isSuperset(of: ["cause", "message"]))
        #expect(all.contains { $0.contains("\"type\":\"command\"") && $0.contains("\"state\":\"done\"") }, "command feedback over the socket")
        // The default rate is 10 Hz: 20 frames take about 2 s.
        let elapsed = Date().timeIntervalSince(opened)
        #expect(Double(telemetry.count) / elapsed < 14)

        // Without a token the upgrade is refused.
        let anonymous = CommandClient(baseURL: rig.baseURL)
        await #expect(throws: (any Error).self) {
            try await anonymous.watch { _ in false }
        }
    }
}
