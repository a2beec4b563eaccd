import CommandClient
import CommandServer
import Foundation
import Inspection
import InspectionStore
import RobotTesting
import Testing

/// The API's contract: the OpenAPI document against the routes, JSON errors for bad
/// input (never a 5xx), and an audit entry for every mutating call.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct APIContractTests {
    /// Every route the router has is in the document, and every operation in the document
    /// answers on the live server (not 404 or 405).
    @Test func theOpenAPIDocumentMatchesTheRoutes() async throws {
        let rig = try await ServerRig()
        let anonymous = CommandClient(baseURL: rig.baseURL)
        let reply = try await anonymous.send("GET", "/openapi.json")
        #expect(reply.status == 200)
        let document = reply.object
        #expect(document["openapi"] as? String == "3.0.3")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let routed = Set(rig.server.makeRouter().routes.map { "\($0.method.rawValue) \($0.path.description)" })
        #expect(routed == documented, "only routed: \(routed.subtracting(documented).sorted()); only documented: \(documented.subtracting(routed).sorted())")
        #expect(documented.count >= 40)

        let supervisor = try await rig.client("sam")
        for entry in documented.sorted() {
            let parts = entry.split(separator: " ", maxSplits: 1).map(String.init)
            let path = parts[1].replacingOccurrences(of: "{id}", with: "no-such-id").replacingOccurrences(of: "{name}", with: "no-such-name")
            guard path != "/api/v1/ws" else { continue }
            // Unauthenticated: each secured operation says 401, each public one answers.
            let operation = paths[parts[1]]?[parts[0].lowercased()] as? [String: Any]
            let secured = !((operation?["security"] as? [Any])?.isEmpty ?? true)
            let plain = try await anonymous.send(parts[0], path, raw: parts[0] == "GET" ? nil : Data("{}".utf8))
            if secured {
                #expect(plain.status == 401, "\(entry) without a token: \(plain.status) \(plain.text)")
            } else {
                #expect(plain.status < 400 || plain.status == 422 || plain.status == 400, "\(entry): \(plain.status)")
            }
            // As a supervisor the route exists: never 404 'no_route' or 405, never 5xx.
            let authed = try await supervisor.send(parts[0], path, raw: parts[0] == "GET" ? nil : Data("{}".utf8))
            #expect(authed.errorCode != "no_route" && authed.status != 405 && authed.status < 500, "\(entry): \(authed.status) \(authed.text)")
        }
        // An unknown route gets a JSON error that points at the document.
        let unknown = try await supervisor.send("GET", "/api/v1/nothing-here")
        #expect(unknown.status == 404)
        #expect(unknown.errorMessage?.contains("/openapi.json") == true)
    }

    @Test func theScanListIsPagedNewestFirst() async throws {
        let rig = try await ServerRig()
        let vera = try await rig.client("vera")
        let plan = try ScanPlan(container: ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .twentyFoot, xMetres: 0, yMetres: 0),
                                profile: ProcedureProfile())
        let instrument = InstrumentRecord(serialNumber: "GD-1", sensitivityCountsPerSecondPerMicrosievertPerHour: 300, calibrationFactor: 1,
                                          calibrationDate: 20260101, calibrationExpiry: 20270101)
        for i in 0..<5 {
            let id = try rig.store.createScan(plan: plan, instrument: instrument, robotId: "RIR-01", officer: "o", id: "paged-\(i)")
            try rig.store.finish(scanId: id, verdict: nil, status: .aborted, actor: "o")
        }
        func ids(_ reply: CommandClient.Reply) -> [String] { ((reply.json as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String } }
        let newest = try await vera.send("GET", "/api/v1/scans?limit=2")
        #expect(newest.status == 200)
        #expect(ids(newest) == ["paged-3", "paged-4"], "\(newest.text)")
        let older = try await vera.send("GET", "/api/v1/scans?limit=2&before=paged-3")
        #expect(ids(older) == ["paged-1", "paged-2"], "\(older.text)")
        #expect(ids(try await vera.send("GET", "/api/v1/scans")).suffix(5) == ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"])
        for bad in ["0", "1001", "ten"] {
            let refused = try await vera.send("GET", "/api/v1/scans?limit=\(bad)")
            #expect(refused.status == 422)
            #expect(refused.errorMessage?.contains("allowed a whole number from 1 to 1000") == true, "\(refused.text)")
        }
        let unknown = try await vera.send("GET", "/api/v1/scans?before=no-such-scan")
        #expect(unknown.status == 404)
    }

    @Test func malformedJSONWrongTypesAndOutOfRangeValuesGetClear4xx() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }

        let malformed = try await otto.send("POST", "/api/v1/commands", raw: Data("{\"type\": \"walk\", ".utf8))
        #expect(malformed.status == 400)
        #expect(malformed.errorCode == "malformed_json")

        let wrongType = try await otto.send("POST", "/api/v1/commands", json: ["type": "walk", "metres": "two"])
        #expect(wrongType.status == 400)
        #expect(wrongType.errorCode == "wrong_type")
        #expect(wrongType.errorMessage == "field 'metres' must be a number", "\(wrongType.text)")

        let missing = try await otto.send("POST", "/api/v1/commands", json: ["metres": 2])
        #expect(missing.status == 400)
        #expect(missing.errorMessage == "field 'type' is required")

        let tooHigh = try await otto.command(["type": "lift", "heightMetres": 3.5])
        #expect(tooHigh.status == 422)
        #expect(tooHigh.errorMessage == "lift height 3.500 m is out of range; allowed 0.350 to 2.750 m", "\(tooHigh.text)")

        let unknown = try await otto.command(["type": "dance"])
        #expect(unknown.status == 422)
        #expect(unknown.errorMessage?.contains("allowed: walk, walkTo, turn") == true)

        let needsArgument = try await otto.command(["type": "measure"])
        #expect(needsArgument.status == 422)
        #expect(needsArgument.errorMessage == "command 'measure' needs 'seconds'")

        let badContainer = try await otto.send("POST", "/api/v1/scans", json: ["containerNumber": "CSQU3054384", "size": "42G1"])
        #expect(badContainer.status == 422)
        #expect(badContainer.errorMessage?.contains("check digit") == true, "\(badContainer.text)")

        let badSize = try await otto.send("POST", "/api/v1/scans", json: ["containerNumber": "CSQU3054383", "size": "99X9"])
        #expect(badSize.status == 422)
        #expect(badSize.errorMessage?.contains("allowed 22G1, 42G1") == true)

        let badId = try await otto.send("GET", "/api/v1/commands/abc")
        #expect(badId.status == 422)

        let huge = try await otto.send("POST", "/api/v1/commands", raw: Data(repeating: 0x20, count: 400_000))
        #expect(huge.status == 413, "\(huge.status) \(huge.text)")

        // Hostile bodies on every mutating route: never a 5xx, always a JSON error envelope.
        let sam = try await rig.client("sam")
        let bodies: [Data] = [Data(), Data("null".utf8), Data("[]".utf8), Data("{\"type\": null}".utf8), Data("\"x\"".utf8),
                              Data("{\"name\": 1e999}".utf8), Data([0xff, 0xfe, 0x00]), Data("{\"containerNumber\": {}}".utf8)]
        let mutating = rig.server.makeRouter().routes.filter { $0.method != .get }.map { ($0.method.rawValue, $0.path.description) }
        for (method, path) in mutating {
            let concrete = path.replacingOccurrences(of: "{id}", with: "x").replacingOccurrences(of: "{name}", with: "x")
            for body in bodies {
                let reply = try await sam.send(method, concrete, raw: body)
                #expect(reply.status < 500, "\(method) \(path) with \(body.count) bytes: \(reply.status) \(reply.text)")
                if reply.status >= 400 { #expect(reply.errorCode != nil, "\(method) \(path): \(reply.text)") }
            }
        }
        // Nothing moved; the only stop is the e-stop these calls pressed (any body presses it).
        let cause = rig.loop.snapshot().stopCause
        #expect(cause == nil || cause == .softwareEstop, "\(String(describing: cause))")
        #expect(abs(rig.loop.snapshot().speedMetresPerSecond) < 0.001)
    }

    @Test func everyMutatingCallIsAuditedAllowedOrRefused() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        let vera = try await rig.client("vera")
        let anonymous = CommandClient(baseURL: rig.baseURL)
        let before = try rig.store.auditEntries(limit: 10_000).last?.seq ?? 0

        #expect(try await otto.command(["type": "measure", "seconds": 0.2]).status == 202)
        #expect(try await vera.command(["type": "measure", "seconds": 0.2]).status == 403)
        #expect(try await anonymous.send("POST", "/api/v1/commands", json: ["type": "stop"]).status == 401)
        #expect(try await otto.send("POST", "/api/v1/scans", json: ["containerNumber": "CSQU3054383", "size": "22G1"]).status == 201)
        #expect(try await anonymous.logIn(name: "otto", password: "not the password").status == 401)

        // Refusals without a valid token are counted per address and written each interval.
        try await Task.sleep(nanoseconds: 600_000_000)
        let entries = try rig.store.auditEntries(limit: 100, afterSeq: before)
        func has(_ actor: String, _ action: String, _ detail: String) -> Bool {
            entries.contains { $0.actor == actor && $0.action == action && $0.detail.hasPrefix(detail) }
        }
        #expect(has("otto", "POST /api/v1/commands", "ok 202 command"), "\(entries)")
        #expect(has("vera", "POST /api/v1/commands", "refused 403 forbidden"))
        #expect(entries.contains { $0.actor == "anonymous" && $0.action == "refusals" && $0.detail.contains("POST /api/v1/commands 401") },
                "\(entries)")
        #expect(has("otto", "POST /api/v1/scans", "ok 201 scan"))
        #expect(has("otto", "POST /api/v1/login", "refused 401 bad_credentials"))
        // The password never reaches the audit log; the chain still verifies.
        let all = try rig.store.auditEntries(limit: 10_000)
        #expect(!all.contains { $0.detail.contains("not the password") || $0.detail.contains(ServerRig.password) })
        #expect(try rig.store.verify().isValid)
    }

    @Test func metricsCoverTheLoopTheBusSafetyAndHTTP() async throws {
        let rig = try await ServerRig()
        let client = try await rig.client("vera")
        _ = try await client.send("GET", "/api/v1/state")
        let metrics = try await client.send("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        for name in ["robotd_loop_wake_latency_microseconds{quantile=\"0.99\"}", "robotd_loop_overruns", "robotd_bus_transactions{device=\"chassis\"}",
                     "robotd_safety_stopped", "robotd_scan_running", "robotd_http_requests_total{method=\"GET\",status=\"200\"}",
                     "robotd_websocket_clients", "robotd_http_request_duration_seconds_bucket"] {
            #expect(metrics.text.contains(name), "missing \(name)")
        }
    }

    /// The server follows each API command's feedback for the WebSocket clients; it used to
    /// forget a finished command only while a client was connected, so commands sent
    /// with no WebSocket open were kept for ever.
    @Test func finishedCommandsAreForgottenWithNoWebSocketOpen() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        for _ in 0..<40 { #expect(try await otto.command(["type": "stop"]).status == 202) }
        func followed() async throws -> Double? {
            let text = try await otto.send("GET", "/metrics").text
            let line = text.split(separator: "\n").first { $0.hasPrefix("robotd_api_commands_followed ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        let deadline = Date().addingTimeInterval(3)
        var count = try await followed()
        while count != 0 && Date() < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
            count = try await followed()
        }
        #expect(count == 0, "still following \(String(describing: count)) finished commands")
    }
}
