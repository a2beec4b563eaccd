import Foundation
import Hummingbird
import Inspection
import InspectionStore
import RobotControl

/// `POST /api/v1/instrument/checks`.
struct InstrumentCheckRequest: Decodable {
    let referenceMicrosievertsPerHour: Double
    let seconds: Double?
}

extension CommandServer {
    // MARK: Instrument quality control: check-source tests and the background trend

    func registerInstrumentRoutes(_ router: Router<Context>) {
        let store = self.store
        let loop = self.loop
        let lease = self.lease
        let desk = self.desk
        let worker = self.reportWorker
        route(router, .get, "/api/v1/instrument/checks", "Check-source tests (newest first) and the station background of recent scans",
              role: .viewer, tag: "administration") { _ in
            let (checks, trend) = try await worker.run { () throws(APIError) in
                do {
                    return (try store.instrumentChecks(limit: 50), try store.backgroundTrend(limit: 100))
                } catch {
                    throw APIError(.serviceUnavailable, "store_unavailable", "the instrument records could not be read (\(error)); try again")
                }
            }
            return Self.json(["checks": JSONValue(encoding: checks) ?? .array([]),
                              "backgroundTrend": JSONValue(encoding: trend) ?? .array([])] as [String: JSONValue])
        }
        route(router, .post, "/api/v1/instrument/checks",
              "Run a check-source test where the robot stands (the check source in its holder on the probe; needs the lease)",
              role: .operator, tag: "administration",
              schema: Schema.object(["referenceMicrosievertsPerHour": Schema.number(0.5...1000), "seconds": Schema.number(5...600)],
                                    required: ["referenceMicrosievertsPerHour"])) { call in
            try lease.check(call.leaseId, user: call.user)
            let r = try call.decode(InstrumentCheckRequest.self)
            guard r.referenceMicrosievertsPerHour.isFinite, (0.5...1000).contains(r.referenceMicrosievertsPerHour) else {
                throw APIError.invalid("referenceMicrosievertsPerHour \(r.referenceMicrosievertsPerHour) is out of range; allowed 0.5 to 1000 "
                                       + "(the check source's dose rate at the probe, from its certificate)")
            }
            let seconds = r.seconds ?? 30
            guard seconds.isFinite, (5...600).contains(seconds) else {
                throw APIError.invalid("seconds \(seconds) is out of range; allowed 5 to 600")
            }
            if let active = desk.active {
                throw APIError.conflict("scan_running", "scan \(active.id) (\(active.container)) is using the detector; wait for it or abort it")
            }
            let measured: (reading: DoseReading, serialNumber: String)
            do {
                measured = try await InstrumentCheckSession.measure(loop: loop, seconds: seconds)
            } catch {
                throw APIError(.serviceUnavailable, "check_failed", "\(error)")
            }
            let user = call.user
            let check = try await worker.run { () throws(APIError) in
                do {
                    return try InstrumentCheckSession.record(store: store, reading: measured.reading, serialNumber: measured.serialNumber,
                                                             referenceMicrosievertsPerHour: r.referenceMicrosievertsPerHour, actor: user)
                } catch {
                    throw APIError(.serviceUnavailable, "store_unavailable", "\(error)")
                }
            }
            call.auditDetail = String(format: "check %@ response %.3f %@", check.serialNumber, check.response, check.passed ? "passed" : "failed")
            return Self.json(check, status: .created)
        }
    }
}
