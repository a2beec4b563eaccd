import Foundation
import Hummingbird
import Inspection
import InspectionStore
import RobotControl

/// `POST /api/v1/instrument/checks`.
struct InstrumentCheckRequest: Decodable {
    /// Optional: the registered check source's reference (decayed) is used when there is one.
    let referenceMicrosievertsPerHour: Double?
    let seconds: Double?
}

/// `PUT /api/v1/instrument/check-source`.
struct CheckSourceRequest: Decodable {
    let sourceId: String
    let referenceMicrosievertsPerHour: Double
    let referenceDate: UInt32
    let halfLifeDays: Double?
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
                                    required: [])) { call in
            try lease.check(call.leaseId, user: call.user)
            let r = try call.decode(InstrumentCheckRequest.self)
            if let typed = r.referenceMicrosievertsPerHour, !(typed.isFinite && CheckSourceReference.allowedMicrosievertsPerHour.contains(typed)) {
                throw APIError.invalid(CheckSourceReference.Problem.outOfRange(typed).description)
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
                                                             typedReference: r.referenceMicrosievertsPerHour, actor: user)
                } catch {
                    if case InstrumentCheckSession.Failure.reference(let problem)? = error as? InstrumentCheckSession.Failure {
                        throw APIError.conflict("check_source_reference", problem.description)
                    }
                    throw APIError(.serviceUnavailable, "store_unavailable", "\(error)")
                }
            }
            call.auditDetail = String(format: "check %@ response %.3f %@", check.serialNumber, check.response, check.passed ? "passed" : "failed")
            return Self.json(check, status: .created)
        }
        route(router, .get, "/api/v1/instrument/check-source", "The detector's registered check source and its dose rate today (decay included)",
              role: .viewer, tag: "administration") { _ in
            guard let serial = loop.detectorInfo?.serialNumber else {
                throw APIError(.serviceUnavailable, "no_detector", "the detector has not reported its identity yet; wait for it to come up")
            }
            let registered = try await worker.run { () throws(APIError) in
                do {
                    return try store.checkSourceReference(serialNumber: serial)
                } catch {
                    throw APIError(.serviceUnavailable, "store_unavailable", "the check-source register could not be read (\(error)); try again")
                }
            }
            guard let registered else {
                throw APIError(.notFound, "no_check_source", CheckSourceReference.Problem.noReference(serialNumber: serial).description)
            }
            return Self.json(["reference": JSONValue(encoding: registered) ?? .null,
                              "todayMicrosievertsPerHour": .number(registered.doseRate(on: ScanSession.today()))] as [String: JSONValue])
        }
        route(router, .put, "/api/v1/instrument/check-source",
              "Register the detector's check source from its certificate (supervisor); the daily check then needs no reference typed in",
              role: .supervisor, tag: "administration",
              schema: Schema.object(["sourceId": Schema.string(length: 1...64), "referenceMicrosievertsPerHour": Schema.number(0.5...1000),
                                     "referenceDate": Schema.date, "halfLifeDays": Schema.number(30...1_000_000)],
                                    required: ["sourceId", "referenceMicrosievertsPerHour", "referenceDate"])) { call in
            let r = try call.decode(CheckSourceRequest.self)
            guard !r.sourceId.isEmpty, r.sourceId.utf8.count <= 64, StoredText.capped(r.sourceId, bytes: 64) == r.sourceId else {
                throw APIError.invalid("sourceId (1 to 64 bytes of UTF-8, without control characters) is required: the check source's "
                                       + "identifier on its certificate")
            }
            guard let serial = loop.detectorInfo?.serialNumber else {
                throw APIError(.serviceUnavailable, "no_detector", "the detector has not reported its identity yet; wait for it to come up")
            }
            let reference: CheckSourceReference
            do {
                reference = try CheckSourceReference(serialNumber: serial, sourceId: r.sourceId,
                                                     referenceMicrosievertsPerHour: r.referenceMicrosievertsPerHour, referenceDate: r.referenceDate,
                                                     halfLifeDays: r.halfLifeDays ?? CheckSourceReference.caesium137HalfLifeDays,
                                                     registeredAt: ISO8601DateFormatter().string(from: Date()), actor: call.user)
                    .validated(today: ScanSession.today())
            } catch {
                throw APIError.invalid("\(error)")
            }
            try await worker.run { () throws(APIError) in
                do {
                    try store.registerCheckSource(reference)
                } catch {
                    throw APIError(.serviceUnavailable, "store_unavailable", "the check source could not be registered (\(error)); try again")
                }
            }
            call.auditDetail = "check source \(r.sourceId) for \(serial)"
            return Self.json(reference, status: .created)
        }
    }
}
