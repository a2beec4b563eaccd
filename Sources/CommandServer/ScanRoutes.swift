import Foundation
import HTTPTypes
import Hummingbird
import Inspection
import InspectionStore
import Logging
import RobotControl

extension CommandServer {
    // MARK: Scans

    func registerScanRoutes(_ router: Router<Context>) {
        let minimumFree = configuration.minimumFreeDiskBytes
        let desk = self.desk
        let lease = self.lease
        let store = self.store
        let worker = self.reportWorker
        route(router, .get, "/api/v1/scans", "List scans: planned ones, then the newest stored (?limit=N, 1 to 1000, default 100; ?before=ID for older)",
              role: .viewer, tag: "scans") { call in
            let query = call.request.uri.queryParameters
            let limitText = query.get("limit") ?? "100"
            guard let limit = Int(limitText), (1...1000).contains(limit) else {
                throw APIError.invalid("limit '\(limitText)' is not allowed; allowed a whole number from 1 to 1000")
            }
            return Self.json(try desk.list(limit: limit, before: query.get("before")))
        }
        route(router, .post, "/api/v1/scans", "Plan a scan (container number, size type and position)", role: .operator, tag: "scans",
              schema: Schema.object(["containerNumber": Schema.containerNumber, "size": Schema.oneOf(["22G1", "42G1", "45G1", "L5G1", "20ft", "40ft", "40ft-hc", "45ft-hc"]),
                              "xMetres": Schema.number, "yMetres": Schema.number, "headingDegrees": Schema.number, "profile": Schema.string],
                             required: ["containerNumber", "size"])) { call in
            let draft = try desk.create(try call.decode(ScanCreateRequest.self), by: call.user)
            call.auditDetail = "scan \(draft.id) \(draft.plan.container.number.text)"
            return Self.json(["id": .string(draft.id), "containerNumber": .string(draft.plan.container.number.text),
                              "points": .number(Double(draft.plan.points.count)), "profile": .string(draft.profileName),
                              "state": .string(ScanState.planned.rawValue)] as [String: JSONValue], status: .created)
        }
        route(router, .get, "/api/v1/scans/{id}", "Scan status and progress", role: .viewer, tag: "scans") { call in
            Self.json(try desk.status(try call.parameter("id")))
        }
        route(router, .get, "/api/v1/scans/{id}/plan", "Preview the plan (JSON)", role: .viewer, tag: "scans") { call in
            Self.json(try desk.plan(try call.parameter("id")))
        }
        route(router, .get, "/api/v1/scans/{id}/plan.svg", "Preview the plan (top-view picture)", role: .viewer, tag: "scans",
              produces: "image/svg+xml") { call in
            Self.text(try desk.plan(try call.parameter("id")).svg(), type: "image/svg+xml")
        }
        route(router, .get, "/api/v1/scans/{id}/points", "Plan points with readings so far (heat maps)", role: .viewer, tag: "scans") { call in
            let id = try call.parameter("id")
            return Self.json(try await worker.run { () throws(APIError) in try desk.points(id) })
        }
        route(router, .post, "/api/v1/scans/{id}/start", "Start a planned scan or resume an interrupted one (needs the lease)",
              role: .operator, tag: "scans") { call in
            try lease.check(call.leaseId, user: call.user)
            let id = try call.parameter("id")
            // A scan that cannot store its readings must not start: refuse while there is room left.
            if let free = DiskSpace.freeBytes(near: store.path), free < minimumFree {
                throw APIError(HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "disk_full",
                               "only \(free / 1_048_576) MiB free where the store is (\(minimumFree / 1_048_576) MiB needed to start a scan); "
                               + "free space or move old reports before scanning")
            }
            let user = call.user
            // Creating the record writes to the store: on the worker, off the cooperative pool.
            let session = try await worker.run { () throws(APIError) in try desk.start(id, by: user) }
            call.auditDetail = "scan \(id)"
            return Self.json(["id": .string(session.scanId), "state": .string(ScanState.running.rawValue),
                              "points": .number(Double(session.plan.points.count))] as [String: JSONValue], status: .accepted)
        }
        route(router, .post, "/api/v1/scans/{id}/register",
              "Locate a planned scan's container with the range pair before starting it: the robot walks a pass along its left wall "
              + "and the plan is made again on the container as measured (needs the lease; GET /api/v1/scans/{id} shows how it went)",
              role: .operator, tag: "scans") { call in
            try lease.check(call.leaseId, user: call.user)
            let id = try call.parameter("id")
            try desk.register(id, by: call.user)
            call.auditDetail = "scan \(id)"
            return Self.json(["id": .string(id), "state": .string(ScanState.planned.rawValue),
                              "registration": .object(["state": .string("running")])] as [String: JSONValue], status: .accepted)
        }
        route(router, .post, "/api/v1/scans/{id}/pause", "Pause the running scan", role: .operator, tag: "scans") { call in
            let id = try call.parameter("id")
            try desk.running(id).executor.pause()
            call.auditDetail = "scan \(id)"
            return Self.json(["id": id, "state": ScanState.paused.rawValue])
        }
        route(router, .post, "/api/v1/scans/{id}/resume", "Resume a paused scan (needs the lease)", role: .operator, tag: "scans") { call in
            try lease.check(call.leaseId, user: call.user)
            let id = try call.parameter("id")
            try desk.running(id).executor.resume()
            call.auditDetail = "scan \(id)"
            return Self.json(["id": id, "state": ScanState.running.rawValue])
        }
        route(router, .post, "/api/v1/scans/{id}/abort", "Abort the running scan (its readings stay; the lease holder or a supervisor)",
              role: .operator, tag: "scans") { call in
            // An aborted scan cannot be resumed: only whoever drives it, or a supervisor.
            if call.session?.role != .supervisor { try lease.check(call.leaseId, user: call.user) }
            let id = try call.parameter("id")
            try desk.running(id).executor.abort()
            call.auditDetail = "scan \(id)"
            return Self.json(["id": id, "state": "aborting"])
        }
        route(router, .get, "/api/v1/scans/{id}/result", "The verdict of a finished scan", role: .viewer, tag: "scans") { call in
            let id = try call.parameter("id")
            guard (try? store.scanStatus(id)) != nil else { throw APIError.notFound("no scan '\(id)' in the store") }
            guard let verdict = try? store.verdict(of: id) else {
                throw APIError.conflict("no_verdict", "scan '\(id)' has no verdict yet; POST /api/v1/scans/\(id)/compute judges the readings so far")
            }
            return Self.json(verdict)
        }
        let compute: @Sendable (Call, String?) async throws -> Response = { call, id in
            let verdict = try await worker.run { () throws(APIError) in try desk.compute(id) }
            call.auditDetail = "scan \(id ?? "current") outcome=\(verdict.outcome.rawValue)"
            return Self.json(verdict)
        }
        route(router, .post, "/api/v1/scans/{id}/compute", "Compute a verdict on the readings so far", role: .operator, tag: "scans") { call in
            try await compute(call, try call.parameter("id"))
        }
        route(router, .post, "/api/v1/compute", "Compute a verdict on the running (or latest) scan's readings so far", role: .operator,
              tag: "scans", schema: Schema.object(["scanId": Schema.string])) { call in
            let id = call.body.isEmpty ? nil : try call.decode(ComputeRequest.self).scanId
            return try await compute(call, id)
        }
        for (suffix, type) in [("json", "application/json"), ("csv", "text/csv; charset=utf-8"), ("html", "text/html; charset=utf-8")] {
            route(router, .get, "/api/v1/scans/{id}/report.\(suffix)", "The scan's report (\(suffix.uppercased()))", role: .viewer,
                  tag: "scans", produces: type) { call in
                let id = try call.parameter("id")
                let text = try await worker.run { () throws(APIError) -> String in
                    let report: ScanReport
                    do {
                        report = try store.report(scanId: id)
                    } catch {
                        throw APIError.conflict("no_report", "\(error)")
                    }
                    switch suffix {
                    case "json":
                        do {
                            return String(decoding: try report.json(), as: UTF8.self)
                        } catch {
                            throw APIError(.internalServerError, "report_failed", "the JSON report could not be written: \(error)")
                        }
                    case "csv": return report.csv()
                    default: return report.html()
                    }
                }
                return Self.text(text, type: type, download: suffix == "csv" ? "scan-\(id).csv" : nil)
            }
        }
        route(router, .get, "/api/v1/scans/{id}/report.n42",
              "The scan in ANSI N42.42-2011 XML. A scan without a verdict gives its readings so far, marked incomplete (header Scan-Completeness)",
              role: .viewer, tag: "scans", produces: "application/xml; charset=utf-8") { call in
            let id = try call.parameter("id")
            let (xml, complete) = try await worker.run { () throws(APIError) -> (String, Bool) in
                let export: ScanExport
                do {
                    export = try store.export(scanId: id)
                } catch {
                    throw APIError.notFound("\(error)")
                }
                return (export.n42XML(exportedAt: Date()), export.completeness == .complete)
            }
            var response = Self.text(xml, type: "application/xml; charset=utf-8", download: "scan-\(id).n42")
            response.headers[HTTPField.Name("Scan-Completeness")!] = complete ? "complete" : "incomplete"
            return response
        }
    }
}
