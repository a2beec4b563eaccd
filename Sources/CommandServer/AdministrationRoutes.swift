import Foundation
import HTTPTypes
import Hummingbird
import Inspection
import InspectionStore
import Logging
import RobotControl

extension CommandServer {
    // MARK: Profiles, instruments, users, audit

    func registerAdministrationRoutes(_ router: Router<Context>) {
        let profiles = desk.profiles
        let store = self.store
        let loop = self.loop
        // Profile files (YAML parsing), the store and scrypt block: they run on the
        // worker's thread, never on the cooperative pool that e-stops and keep-alives need.
        let worker = self.reportWorker
        route(router, .get, "/api/v1/profiles", "List procedure profiles", role: .viewer, tag: "administration") { _ in
            let entries = try await worker.run { () throws(APIError) -> [ProfileLibrary.Entry] in
                var entries: [ProfileLibrary.Entry] = []
                for name in profiles.names() {
                    guard let p = try? profiles.load(name) else { continue }
                    entries.append(.init(name: name, version: p.version, title: p.name, faces: p.faces.map(\.rawValue), heightsMetres: p.heightsMetres))
                }
                return entries
            }
            return Self.json(entries)
        }
        route(router, .get, "/api/v1/profiles/{name}", "A profile (parsed)", role: .viewer, tag: "administration") { call in
            let name = try call.parameter("name")
            return Self.json(try await worker.run { () throws(APIError) in try profiles.load(name) })
        }
        route(router, .get, "/api/v1/profiles/{name}/yaml", "A profile's file", role: .viewer, tag: "administration",
              produces: "application/yaml") { call in
            let name = try call.parameter("name")
            return Self.text(try await worker.run { () throws(APIError) in try profiles.text(name) }, type: "application/yaml; charset=utf-8")
        }
        route(router, .put, "/api/v1/profiles/{name}", "Add or replace a profile (YAML body; supervisor)", role: .supervisor,
              tag: "administration", schema: .object(["type": .string("string"), "description": .string("the profile file, YAML")])) { call in
            let name = try call.parameter("name")
            let text = String(decoding: call.body, as: UTF8.self)
            let profile = try await worker.run { () throws(APIError) in try profiles.save(name, text: text) }
            call.auditDetail = "profile \(name) version \(profile.version)"
            return Self.json(profile)
        }
        route(router, .get, "/api/v1/instruments", "The detector: identity, calibration in force, calibration records", role: .viewer,
              tag: "administration") { _ in
            let calibrations = try await worker.run { () throws(APIError) in (try? store.calibrations()) ?? [] }
            var body: [String: JSONValue] = ["calibrations": JSONValue(encoding: calibrations) ?? .array([])]
            if let d = loop.detectorInfo {
                body["detector"] = .object([
                    "serialNumber": .string(d.serialNumber),
                    "sensitivityCountsPerSecondPerMicrosievertPerHour": .number(d.sensitivityCountsPerSecondPerMicrosievertPerHour),
                    "calibrationFactor": .number(d.calibrationFactor), "calibrationDate": .number(Double(d.calibrationDate)),
                    "calibrationExpiry": .number(Double(d.calibrationExpiry)),
                    "calibrationValid": .bool(ScanSession.today() <= d.calibrationExpiry),
                ])
            } else {
                body["detector"] = .null
            }
            body["firmware"] = JSONValue(encoding: loop.firmwareVersions) ?? .null
            return Self.json(body)
        }
        route(router, .post, "/api/v1/calibrations", "Record a calibration certificate (supervisor)", role: .supervisor, tag: "administration",
              schema: Schema.object(["serialNumber": Schema.string(length: 1...64), "calibrationFactor": Schema.number(0.5...2), "calibrationDate": Schema.date,
                              "calibrationExpiry": Schema.date, "certificate": Schema.string(length: 1...200)],
                             required: ["serialNumber", "calibrationFactor", "calibrationDate", "calibrationExpiry", "certificate"])) { call in
            let r = try call.decode(CalibrationRequest.self)
            guard r.calibrationFactor.isFinite, r.calibrationFactor >= 0.5, r.calibrationFactor <= 2 else {
                throw APIError.invalid("calibrationFactor \(r.calibrationFactor) is out of range; allowed 0.5 to 2")
            }
            guard Self.validDate(r.calibrationDate), Self.validDate(r.calibrationExpiry), r.calibrationExpiry > r.calibrationDate else {
                throw APIError.invalid("calibrationDate and calibrationExpiry must be dates as YYYYMMDD, expiry after the date")
            }
            // Bytes, not characters: one character can carry thousands of combining marks.
            guard !r.serialNumber.isEmpty, r.serialNumber.utf8.count <= 64, !r.certificate.isEmpty, r.certificate.utf8.count <= 200,
                  StoredText.capped(r.serialNumber, bytes: 64) == r.serialNumber, StoredText.capped(r.certificate, bytes: 200) == r.certificate else {
                throw APIError.invalid("serialNumber (1 to 64 bytes of UTF-8) and certificate (1 to 200) are required, without control characters")
            }
            let record = ScanStore.CalibrationRecord(serialNumber: r.serialNumber, calibrationFactor: r.calibrationFactor,
                                                     calibrationDate: r.calibrationDate, calibrationExpiry: r.calibrationExpiry,
                                                     certificate: r.certificate)
            let user = call.user
            try await worker.run { () throws(APIError) in
                do {
                    try store.addCalibration(record, by: user)
                } catch {
                    throw APIError(.serviceUnavailable, "store_unavailable", "the calibration could not be stored; try again")
                }
            }
            call.auditDetail = "calibration \(r.serialNumber)"
            return Self.json(record, status: .created)
        }
        route(router, .get, "/api/v1/users", "List users (supervisor)", role: .supervisor, tag: "administration") { _ in
            // A store that cannot be read is said, not shown as an empty list.
            let users = try await worker.run { () throws(APIError) in
                do { return try store.users() } catch {
                    throw APIError(.serviceUnavailable, "store_unavailable", "the user store could not be read (\(error)); try again")
                }
            }
            return Self.json(users.map { UserBody(name: $0.name, role: $0.role, createdAt: $0.createdAt, createdBy: $0.createdBy) })
        }
        route(router, .post, "/api/v1/users", "Add a user (supervisor)", role: .supervisor, tag: "administration",
              schema: Schema.object(["name": Schema.userName, "role": Schema.oneOf(Role.allCases.map(\.rawValue)), "password": Schema.password],
                             required: ["name", "role", "password"])) { call in
            let r = try call.decode(UserCreateRequest.self)
            try Self.checkUserName(r.name)
            guard let role = Role(rawValue: r.role) else {
                throw APIError.invalid("role '\(r.role)' is not a role; allowed: viewer, operator, supervisor")
            }
            let user = call.user
            try await worker.run { () throws(APIError) in
                let credential: String
                do {
                    credential = try PasswordHasher.credential(for: r.password)
                } catch {
                    throw APIError.invalid("\(error)")
                }
                do {
                    try store.addUser(name: r.name, role: role, credential: credential, by: user)
                } catch {
                    throw APIError.conflict("user_exists", "\(error)")
                }
            }
            call.auditDetail = "user \(r.name) role=\(role.rawValue)"
            return Self.json(["name": r.name, "role": role.rawValue], status: .created)
        }
        route(router, .patch, "/api/v1/users/{name}", "Change a user's role or password (supervisor)", role: .supervisor,
              tag: "administration", schema: Schema.object(["role": Schema.oneOf(Role.allCases.map(\.rawValue)), "password": Schema.password])) { call in
            let name = try call.parameter("name")
            let r = try call.decode(UserUpdateRequest.self)
            var newRole: Role?
            if let role = r.role {
                guard let parsed = Role(rawValue: role) else {
                    throw APIError.invalid("role '\(role)' is not a role; allowed: viewer, operator, supervisor")
                }
                newRole = parsed
            }
            let changedRole = newRole
            let user = call.user
            try await worker.run { () throws(APIError) in
                var credential: String?
                if let password = r.password {
                    do { credential = try PasswordHasher.credential(for: password) } catch { throw APIError.invalid("\(error)") }
                }
                do {
                    try store.updateUser(name: name, role: changedRole, credential: credential, by: user)
                } catch {
                    throw APIError.notFound("\(error)")
                }
            }
            // A new password or role ends the user's sessions and WebSockets.
            self.authenticator.accountChanged(name)
            call.auditDetail = "user \(name)"
            return Self.json(["name": name, "status": "updated"])
        }
        route(router, .delete, "/api/v1/users/{name}", "Remove a user (supervisor)", role: .supervisor, tag: "administration") { call in
            let name = try call.parameter("name")
            guard name != call.user else { throw APIError.conflict("self_removal", "you cannot remove yourself; another supervisor can") }
            do {
                try store.removeUser(name: name, by: call.user)
            } catch {
                throw APIError.notFound("\(error)")
            }
            self.authenticator.accountChanged(name)
            call.auditDetail = "user \(name)"
            return Self.json(["name": name, "status": "removed"])
        }
        route(router, .get, "/api/v1/audit", "The audit log, newest last (supervisor; ?limit=N&after=SEQ)", role: .supervisor,
              tag: "administration") { call in
            let limit = call.request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 200
            let after = call.request.uri.queryParameters.get("after").flatMap { Int64($0) } ?? 0
            guard (1...10_000).contains(limit) else { throw APIError.invalid("limit \(limit) is out of range; allowed 1 to 10000") }
            let entries = try await worker.run { () throws(APIError) in
                do {
                    return try store.auditEntries(limit: limit, afterSeq: after)
                } catch {
                    throw APIError(.serviceUnavailable, "store_unavailable", "the audit log could not be read; try again")
                }
            }
            return Self.json(entries)
        }
    }

    static func validDate(_ d: UInt32) -> Bool {
        let year = d / 10000, month = d / 100 % 100, day = d % 100
        return (2000...2100).contains(year) && (1...12).contains(month) && (1...31).contains(day)
    }

    static func checkUserName(_ name: String) throws(APIError) {
        guard !name.isEmpty, name.count <= 32,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw .invalid("user name '\(name)' is not allowed; use 1 to 32 letters, digits, '-', '_' or '.'")
        }
    }

    // MARK: Documents: OpenAPI, metrics, phone UI

    func registerDocumentRoutes(_ router: Router<Context>) {
        let connections = self.connections
        let metrics = self.metrics
        let loop = self.loop
        let telemetry = self.telemetry
        let desk = self.desk
        let ui = self.phoneUI
        route(router, .get, "/openapi.json", "This API's OpenAPI document", role: nil, tag: "documents") { [weak self] _ in
            Self.json(self?.openAPIDocument() ?? .null)
        }
        route(router, .get, "/metrics", "Prometheus metrics", role: nil, tag: "documents", produces: "text/plain") { _ in
            let scan = desk.active.map { ($0.progress.completedPoints, $0.progress.totalPoints) }
            let bytes = metrics.scrape(loop: loop, webSocketClients: telemetry.clientCount,
                                       framesSent: telemetry.framesSent.load(ordering: .relaxed), watchedCommands: telemetry.watchedCount, scan: scan,
                                       slowConnectionsClosed: connections.timedOut.load(ordering: .relaxed),
                                       diskFreeBytes: desk.disk.freeBytes == Int64.max ? nil : desk.disk.freeBytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        for file in PhoneUIFiles.names {
            let path = file == "index.html" ? "/" : "/ui/\(file)"
            route(router, .get, path, "Phone UI: \(file)", role: nil, tag: "documents", produces: PhoneUIFiles.type(of: file)) { _ in
                guard let content = ui.files[file] else { throw APIError.notFound("the phone UI file \(file) is missing from this build") }
                return Response(status: .ok, headers: [.contentType: PhoneUIFiles.type(of: file), .cacheControl: "no-cache"],
                                body: .init(byteBuffer: ByteBuffer(bytes: content)))
            }
        }
    }
}
