import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Inspection
import InspectionStore
import Logging
import RobotControl

// JSON Schema fragments for the OpenAPI document.
private func object(_ properties: [String: JSONValue], required: [String] = []) -> JSONValue {
    var schema: [String: JSONValue] = ["type": .string("object"), "properties": .object(properties), "additionalProperties": .bool(false)]
    if !required.isEmpty { schema["required"] = .array(required.map { .string($0) }) }
    return .object(schema)
}
private let string: JSONValue = .object(["type": .string("string")])
private let number: JSONValue = .object(["type": .string("number")])
private let integer: JSONValue = .object(["type": .string("integer"), "minimum": .number(0)])
private let boolean: JSONValue = .object(["type": .string("boolean")])
private func oneOf(_ values: [String]) -> JSONValue { .object(["type": .string("string"), "enum": .array(values.map { .string($0) })]) }
private func string(pattern: String, _ description: String) -> JSONValue {
    .object(["type": .string("string"), "pattern": .string(pattern), "description": .string(description)])
}
private func string(length: ClosedRange<Int>) -> JSONValue {
    .object(["type": .string("string"), "minLength": .number(Double(length.lowerBound)), "maxLength": .number(Double(length.upperBound))])
}
private func number(_ range: ClosedRange<Double>) -> JSONValue {
    .object(["type": .string("number"), "minimum": .number(range.lowerBound), "maximum": .number(range.upperBound)])
}
private func integer(_ range: ClosedRange<Int>) -> JSONValue {
    .object(["type": .string("integer"), "minimum": .number(Double(range.lowerBound)), "maximum": .number(Double(range.upperBound))])
}
private let containerNumber = string(pattern: "^[A-Z]{3}[UJZ][0-9]{7}$", "ISO 6346: owner code, category, serial number and check digit (checked)")
private let userName = string(pattern: "^[A-Za-z0-9._-]{1,32}$", "1 to 32 letters, digits, '-', '_' or '.'")
private let password: JSONValue = .object(["type": .string("string"), "minLength": .number(Double(PasswordHasher.minimumLength))])
private let date = integer(19000101...99991231)

extension CommandServer {
    /// How long POST /api/v1/estop waits for the loop to latch the stop (25 ticks at
    /// 100 Hz) before it answers 503: the loop latches it on its next tick.
    static let estopLatchTimeoutSeconds = 0.25

    func registerRoutes(_ router: Router<Context>) {
        registerSessionRoutes(router)
        registerRobotRoutes(router)
        registerScanRoutes(router)
        registerAdministrationRoutes(router)
        registerDocumentRoutes(router)
    }

    // MARK: Log-in, lease

    func registerSessionRoutes(_ router: Router<Context>) {
        let authenticator = self.authenticator
        let store = self.store
        let lease = self.lease
        let refusals = self.refusals
        let tickets = self.tickets
        route(router, .get, "/api/v1/health", "Check that the server answers", role: nil, tag: "session") { _ in
            Self.json(["status": "ok"])
        }
        route(router, .post, "/api/v1/login", "Log in", role: nil, tag: "session",
              schema: object(["name": string, "password": string], required: ["name", "password"]), audit: .never,
              maxBody: 4096) { call in
            let body = try call.decode(LoginRequest.self)
            do {
                let (token, session) = try await authenticator.logIn(name: body.name, password: body.password, source: call.source)
                try? await store.recordAudit(actor: session.user, action: "POST /api/v1/login",
                                             detail: "ok 200 session \(session.handle) from \(call.source)")
                return Self.json(LoginResponse(token: token, user: session.user, role: session.role, expiresAt: session.expiresAt))
            } catch let error as Authenticator.LoginRefusal {
                switch error.name {
                case .account(let name):
                    // A real account's failure is audited under its name (the throttle bounds how often).
                    try? await store.recordAudit(actor: name, action: "POST /api/v1/login",
                                                 detail: "refused \(error.error.status.code) \(error.error.code) from \(call.source)")
                case .notAnAccount:
                    // Names that are no account are never stored verbatim (a mistyped password, a flood).
                    refusals.count(source: call.source, action: "POST /api/v1/login", code: "\(error.error.status.code) \(error.error.code)")
                }
                throw error.error
            }
        }
        route(router, .post, "/api/v1/tickets", "A one-time ticket (60 s) for a GET that cannot carry the token: the WebSocket",
              role: .viewer, tag: "session", schema: object(["path": string], required: ["path"]), audit: .refusals) { call in
            let body = try call.decode(TicketRequest.self)
            guard body.path == "/api/v1/ws" else {
                throw APIError.invalid("tickets are for '/api/v1/ws' (the telemetry WebSocket) only; other calls take the Authorization header")
            }
            guard let token = Self.token(of: call.request) else { throw APIError.noToken }
            return Self.json(["ticket": .string(tickets.issue(token: token, path: body.path)), "path": .string(body.path),
                              "expiresInSeconds": .number(tickets.lifetimeSeconds)] as [String: JSONValue])
        }
        route(router, .post, "/api/v1/logout", "Log out", role: .viewer, tag: "session") { call in
            if let token = Self.token(of: call.request) { authenticator.logOut(token: token) }
            return Self.json(["status": "logged out"])
        }
        route(router, .get, "/api/v1/me", "Who am I", role: .viewer, tag: "session") { call in
            Self.json(["user": call.user, "role": call.session?.role.rawValue ?? "", "lease": lease.status().user == call.user ? "held" : "not held"])
        }
        route(router, .get, "/api/v1/lease", "Motion lease status", role: .viewer, tag: "lease") { _ in
            Self.json(lease.status())
        }
        route(router, .post, "/api/v1/lease", "Acquire the motion lease", role: .operator, tag: "lease",
              schema: object(["client": string])) { call in
            let client = call.body.isEmpty ? "api" : (try call.decode(LeaseRequest.self).client ?? "api")
            let holder = try lease.acquire(user: call.user, client: String(client.prefix(64)))
            call.auditDetail = "client=\(holder.client)"
            return Self.json(["lease": .string(holder.leaseId), "user": .string(holder.user), "client": .string(holder.client),
                              "timeoutSeconds": .number(lease.timeoutSeconds)] as [String: JSONValue])
        }
        route(router, .post, "/api/v1/lease/keepalive", "Retain the motion lease (send every 0.25 s or so)", role: .operator, tag: "lease",
              audit: .refusals) { call in
            try lease.keepAlive(call.leaseId, user: call.user)
            return Self.json(["status": "retained"])
        }
        let desk = self.desk
        let loop = self.loop
        route(router, .delete, "/api/v1/lease", "Return the motion lease (refused while a scan runs; stops motion first)",
              role: .operator, tag: "lease") { call in
            // Returning the lease disarms the deadman: never while a scan drives the robot,
            // and manual motion is stopped first.
            if let active = desk.active, !active.progress.paused {
                throw APIError.conflict("scan_running", "scan \(active.id) is running under this lease; pause or abort it before returning the lease")
            }
            let holder = lease.status()
            if holder.user == call.user { loop.requestHalt(inhibitMotion: false) }
            let returned = try lease.release(call.leaseId, user: call.user)
            call.auditDetail = "client=\(returned.client)"
            return Self.json(["status": "returned"])
        }
        route(router, .post, "/api/v1/lease/takeover", "Take the motion lease over (supervisor)", role: .supervisor, tag: "lease",
              schema: object(["client": string])) { call in
            let client = call.body.isEmpty ? "api" : (try call.decode(LeaseRequest.self).client ?? "api")
            let (holder, previous) = lease.takeOver(user: call.user, client: String(client.prefix(64)))
            call.auditDetail = "took over from \(previous.map { "\($0.user) (\($0.client))" } ?? "nobody")"
            return Self.json(["lease": .string(holder.leaseId), "user": .string(holder.user), "client": .string(holder.client),
                              "previousHolder": previous.map { .string($0.user) } ?? .null,
                              "timeoutSeconds": .number(lease.timeoutSeconds)] as [String: JSONValue])
        }
    }

    // MARK: Robot

    func registerRobotRoutes(_ router: Router<Context>) {
        let loop = self.loop
        let lease = self.lease
        let desk = self.desk
        let telemetry = self.telemetry
        let authenticator = self.authenticator
        let metrics = self.metrics
        route(router, .get, "/api/v1/state", "Robot state", role: .viewer, tag: "robot") { _ in
            Self.json(Self.telemetryFrame(loop: loop, lease: lease, desk: desk))
        }
        let commandSchema = object([
            "type": oneOf(CommandRequest.types), "metres": number, "speedMetresPerSecond": number, "xMetres": number, "yMetres": number,
            "degrees": number, "headingDegrees": number, "heightMetres": number, "seconds": number, "wait": boolean, "waitSeconds": number,
        ], required: ["type"])
        route(router, .post, "/api/v1/commands", "Send a robot command", role: .operator, tag: "robot", schema: commandSchema) { call in
            let body = try call.decode(CommandRequest.self)
            let command = try Self.command(from: body, configuration: loop.configuration)
            // Stop is always allowed; motion needs the lease; while a scan drives the robot only
            // stop and resetFault (with the lease: the scan waiting for the reset then carries on).
            if command != .stop {
                if let active = desk.active, command != .resetFault {
                    throw APIError.conflict("scan_running", "scan \(active.id) (\(active.container)) is driving the robot; "
                                            + "only stop and resetFault are allowed (resetFault lets it carry on); pause or abort it to drive by hand")
                }
                if command.needsLease { try lease.check(call.leaseId, user: call.user) }
            }
            let id = loop.submit(command)
            if loop.feedback(id)?.problem == .mailboxFull {
                // Said plainly instead of a 202 for a command the loop will never see.
                var error = APIError(.serviceUnavailable, "queue_full",
                                     "the robot's command queue is full (64 waiting); try again in a moment. The e-stop does not queue")
                error.headers[.retryAfter] = "1"
                throw error
            }
            telemetry.watch(id)
            call.auditDetail = "command \(id) \(command)"
            if body.wait == true {
                let timeout = min(max(body.waitSeconds ?? 120, 0.1), 600)
                let feedback = await loop.result(of: id, timeout: timeout)
                return Self.json(feedback.map(CommandStatus.init) ?? CommandStatus(id: id, command: command))
            }
            return Self.json(CommandStatus(id: id, command: command), status: .accepted)
        }
        route(router, .get, "/api/v1/commands/{id}", "Command status", role: .viewer, tag: "robot") { call in
            let text = try call.parameter("id")
            guard let id = UInt64(text) else { throw APIError.invalid("command id '\(text)' must be a whole number") }
            guard let feedback = loop.feedback(id) else {
                throw APIError.notFound("no command \(id) (unknown, or too old: the loop keeps the newest feedback only)")
            }
            return Self.json(CommandStatus(feedback))
        }
        route(router, .post, "/api/v1/estop",
              "E-stop: cut drive power now (any token issued in the last 24 h, even expired; no lease). 200 once latched, 503 if not",
              role: .viewer, tag: "robot", stopAuthority: true) { call in
            let started = Date()
            let tickAtRequest = loop.snapshot().tick
            let (id, ticket) = loop.estop()
            telemetry.watch(id)
            let latched = await loop.awaitSoftwareEstop(ticket: ticket, timeout: Self.estopLatchTimeoutSeconds)
            let waited = Date().timeIntervalSince(started) * 1000
            let servedAt = loop.snapshot().estopServedAtTick
            call.auditDetail = "command \(id) " + (latched ? "latched" : "NOT latched") + String(format: " after %.1f ms", waited)
            guard latched else {
                throw APIError(.serviceUnavailable, "estop_not_latched",
                               "the control loop did not latch the e-stop within \(Int(Self.estopLatchTimeoutSeconds * 1000)) ms; "
                               + "press again, and use the robot's red mushroom button")
            }
            return Self.json(EstopStatus(id: id, latched: true, waitedMilliseconds: waited,
                                         ticksToLatch: servedAt >= tickAtRequest ? servedAt - tickAtRequest : 0,
                                         stopCause: loop.snapshot().stopCause.map { "\($0)" }))
        }
        route(router, .post, "/api/v1/estop/release", "Release the e-stop (operator with the lease)", role: .operator, tag: "robot") { call in
            try lease.check(call.leaseId, user: call.user)
            let id = loop.submit(.releaseEstop)
            if loop.feedback(id)?.problem == .mailboxFull {
                var error = APIError(.serviceUnavailable, "queue_full", "the robot's command queue is full; release again in a moment")
                error.headers[.retryAfter] = "1"
                throw error
            }
            telemetry.watch(id)
            call.auditDetail = "command \(id)"
            return Self.json(CommandStatus(id: id, command: .releaseEstop), status: .accepted)
        }
        let tickets = self.tickets
        let webSockets = self.webSockets
        let maximumWebSockets = configuration.maximumWebSockets
        let perUser = configuration.maximumWebSocketsPerUser
        router.ws("/api/v1/ws") { request, _ in
            // Browsers cannot set headers on a WebSocket: it takes a one-time ticket
            // (POST /api/v1/tickets) in the query, or the Authorization header.
            let ticket: String? = request.uri.queryParameters.get("ticket").map { String($0) }
            let token = Self.token(of: request) ?? ticket.flatMap { tickets.redeem($0, path: "/api/v1/ws") }
            let session = try authenticator.session(for: token)
            let full = APIError(.tooManyRequests, "too_many_websockets",
                                "at most \(perUser) telemetry connections per user and \(maximumWebSockets) in all; close one first")
            guard webSockets.hasRoom(session.user, total: maximumWebSockets, perUser: perUser) else { throw full }
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                throw APIError(.badRequest, "not_websocket", "this is the telemetry WebSocket; connect with a WebSocket client "
                               + "(ws://HOST/api/v1/ws?ticket=TICKET, the ticket from POST /api/v1/tickets)")
            }
            // Caps, so no one user (or token) can hold the server's sockets and frames.
            guard webSockets.admit(session.user, total: maximumWebSockets, perUser: perUser) else { throw full }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let ticket: String? = context.request.uri.queryParameters.get("ticket").map { String($0) }
            let token = Self.token(of: context.request) ?? ticket.flatMap { tickets.redeemedToken($0) } ?? ""
            let user = (try? authenticator.stopAuthority(for: token).user) ?? ""
            let (id, stream) = telemetry.subscribe()
            metrics.countWebSocket(opened: true)
            defer {
                telemetry.unsubscribe(id)
                metrics.countWebSocket(opened: false)
                webSockets.close(user)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await _ in inbound.messages(maxSize: 4096) {}
                }
                group.addTask {
                    for await text in stream { try await outbound.write(.text(text)) }
                }
                group.addTask {
                    // A session that ends (log-out, expiry, a password or role change, the
                    // account removed) closes its WebSocket within a second.
                    while !Task.isCancelled && authenticator.isLive(token) {
                        try await Task.sleep(nanoseconds: 1_000_000_000)
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
        routeTable.withLock {
            $0.append(RouteEntry(method: "GET", path: "/api/v1/ws", summary: "WebSocket: telemetry, command feedback and scan progress (?ticket= from POST /api/v1/tickets)",
                                 role: .viewer, mutating: false, requestSchema: nil, produces: "application/json", tag: "robot"))
        }
    }

    /// A command from its request, checked against the robot's limits.
    static func command(from r: CommandRequest, configuration c: ControlConfiguration) throws(APIError) -> RobotCommand {
        func need(_ value: Double?, _ name: String) throws(APIError) -> Double {
            guard let value else { throw .invalid("command '\(r.type)' needs '\(name)'") }
            guard value.isFinite else { throw .invalid("'\(name)' must be a finite number") }
            return value
        }
        func check(_ value: Double, _ what: String, _ low: Double, _ high: Double, _ unit: String) throws(APIError) {
            guard value >= low, value <= high else {
                throw .invalid(String(format: "%@ %.3f %@ is out of range; allowed %.3f to %.3f %@", what, value, unit, low, high, unit))
            }
        }
        var speed: Double?
        if let s = r.speedMetresPerSecond {
            try check(try need(s, "speedMetresPerSecond"), "speed", 0.01, c.chassisMaxSpeedMetresPerSecond, "m/s")
            speed = s
        }
        switch r.type {
        case "walk":
            let metres = try need(r.metres, "metres")
            try check(metres, "walk distance", -50, 50, "m")
            return .walk(metres: metres, speedMetresPerSecond: speed)
        case "walkTo":
            let x = try need(r.xMetres, "xMetres"), y = try need(r.yMetres, "yMetres")
            try check(x, "x", -1000, 1000, "m")
            try check(y, "y", -1000, 1000, "m")
            return .walkTo(x: x, y: y, speedMetresPerSecond: speed)
        case "turn":
            let degrees = try need(r.degrees, "degrees")
            try check(degrees, "turn", -360, 360, "degrees")
            return .turn(degrees: degrees)
        case "turnTo":
            let heading = try need(r.headingDegrees, "headingDegrees")
            try check(heading, "heading", -180, 180, "degrees")
            return .turnTo(headingDegrees: heading)
        case "lift":
            let height = try need(r.heightMetres, "heightMetres")
            try check(height, "lift height", c.liftMinimumMetres, c.liftMaximumMetres, "m")
            return .lift(heightMetres: height)
        case "home": return .homeLift
        case "measure":
            let seconds = try need(r.seconds, "seconds")
            try check(seconds, "measurement time", 0.1, 600, "s")
            return .measure(seconds: seconds)
        case "resetFault": return .resetFault
        case "stop": return .stop
        default:
            throw .invalid("unknown command type '\(r.type)'; allowed: \(CommandRequest.types.joined(separator: ", "))")
        }
    }

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
              schema: object(["containerNumber": containerNumber, "size": oneOf(["22G1", "42G1", "45G1", "L5G1", "20ft", "40ft", "40ft-hc", "45ft-hc"]),
                              "xMetres": number, "yMetres": number, "headingDegrees": number, "profile": string],
                             required: ["containerNumber", "size"])) { call in
            let draft = try desk.create(try call.decode(ScanCreateRequest.self), by: call.user)
            call.auditDetail = "scan \(draft.id) \(draft.plan.container.number.text)"
            return Self.json(["id": .string(draft.id), "containerNumber": .string(draft.plan.container.number.text),
                              "points": .number(Double(draft.plan.points.count)), "profile": .string(draft.profileName),
                              "state": .string("planned")] as [String: JSONValue], status: .created)
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
            let session = try desk.start(id, by: call.user)
            call.auditDetail = "scan \(id)"
            return Self.json(["id": .string(session.scanId), "state": .string("running"),
                              "points": .number(Double(session.plan.points.count))] as [String: JSONValue], status: .accepted)
        }
        route(router, .post, "/api/v1/scans/{id}/pause", "Pause the running scan", role: .operator, tag: "scans") { call in
            let id = try call.parameter("id")
            try desk.running(id).executor.pause()
            call.auditDetail = "scan \(id)"
            return Self.json(["id": id, "state": "paused"])
        }
        route(router, .post, "/api/v1/scans/{id}/resume", "Resume a paused scan (needs the lease)", role: .operator, tag: "scans") { call in
            try lease.check(call.leaseId, user: call.user)
            let id = try call.parameter("id")
            try desk.running(id).executor.resume()
            call.auditDetail = "scan \(id)"
            return Self.json(["id": id, "state": "running"])
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
              tag: "scans", schema: object(["scanId": string])) { call in
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
    }

    // MARK: Profiles, instruments, users, audit

    func registerAdministrationRoutes(_ router: Router<Context>) {
        let profiles = desk.profiles
        let store = self.store
        let loop = self.loop
        route(router, .get, "/api/v1/profiles", "List procedure profiles", role: .viewer, tag: "administration") { _ in
            var entries: [ProfileLibrary.Entry] = []
            for name in profiles.names() {
                guard let p = try? profiles.load(name) else { continue }
                entries.append(.init(name: name, version: p.version, title: p.name, faces: p.faces.map(\.rawValue), heightsMetres: p.heightsMetres))
            }
            return Self.json(entries)
        }
        route(router, .get, "/api/v1/profiles/{name}", "A profile (parsed)", role: .viewer, tag: "administration") { call in
            Self.json(try profiles.load(try call.parameter("name")))
        }
        route(router, .get, "/api/v1/profiles/{name}/yaml", "A profile's file", role: .viewer, tag: "administration",
              produces: "application/yaml") { call in
            Self.text(try profiles.text(try call.parameter("name")), type: "application/yaml; charset=utf-8")
        }
        route(router, .put, "/api/v1/profiles/{name}", "Add or replace a profile (YAML body; supervisor)", role: .supervisor,
              tag: "administration", schema: .object(["type": .string("string"), "description": .string("the profile file, YAML")])) { call in
            let name = try call.parameter("name")
            let profile = try profiles.save(name, text: String(decoding: call.body, as: UTF8.self))
            call.auditDetail = "profile \(name) version \(profile.version)"
            return Self.json(profile)
        }
        route(router, .get, "/api/v1/instruments", "The detector: identity, calibration in force, calibration records", role: .viewer,
              tag: "administration") { _ in
            var body: [String: JSONValue] = ["calibrations": JSONValue(encoding: (try? store.calibrations()) ?? []) ?? .array([])]
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
              schema: object(["serialNumber": string(length: 1...64), "calibrationFactor": number(0.5...2), "calibrationDate": date,
                              "calibrationExpiry": date, "certificate": string(length: 1...200)],
                             required: ["serialNumber", "calibrationFactor", "calibrationDate", "calibrationExpiry", "certificate"])) { call in
            let r = try call.decode(CalibrationRequest.self)
            guard r.calibrationFactor.isFinite, r.calibrationFactor >= 0.5, r.calibrationFactor <= 2 else {
                throw APIError.invalid("calibrationFactor \(r.calibrationFactor) is out of range; allowed 0.5 to 2")
            }
            guard Self.validDate(r.calibrationDate), Self.validDate(r.calibrationExpiry), r.calibrationExpiry > r.calibrationDate else {
                throw APIError.invalid("calibrationDate and calibrationExpiry must be dates as YYYYMMDD, expiry after the date")
            }
            guard !r.serialNumber.isEmpty, r.serialNumber.count <= 64, !r.certificate.isEmpty, r.certificate.count <= 200 else {
                throw APIError.invalid("serialNumber (1 to 64 characters) and certificate (1 to 200) are required")
            }
            let record = ScanStore.CalibrationRecord(serialNumber: r.serialNumber, calibrationFactor: r.calibrationFactor,
                                                     calibrationDate: r.calibrationDate, calibrationExpiry: r.calibrationExpiry,
                                                     certificate: r.certificate)
            do {
                try store.addCalibration(record, by: call.user)
            } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the calibration could not be stored: \(error)")
            }
            call.auditDetail = "calibration \(r.serialNumber)"
            return Self.json(record, status: .created)
        }
        route(router, .get, "/api/v1/users", "List users (supervisor)", role: .supervisor, tag: "administration") { _ in
            Self.json(((try? store.users()) ?? []).map { UserBody(name: $0.name, role: $0.role, createdAt: $0.createdAt, createdBy: $0.createdBy) })
        }
        route(router, .post, "/api/v1/users", "Add a user (supervisor)", role: .supervisor, tag: "administration",
              schema: object(["name": userName, "role": oneOf(Role.allCases.map(\.rawValue)), "password": password],
                             required: ["name", "role", "password"])) { call in
            let r = try call.decode(UserCreateRequest.self)
            try Self.checkUserName(r.name)
            guard let role = Role(rawValue: r.role) else {
                throw APIError.invalid("role '\(r.role)' is not a role; allowed: viewer, operator, supervisor")
            }
            let credential: String
            do {
                credential = try PasswordHasher.credential(for: r.password)
            } catch let error as PasswordHasher.Refusal {
                throw APIError.invalid(error.description)
            }
            do {
                try store.addUser(name: r.name, role: role.rawValue, credential: credential, by: call.user)
            } catch {
                throw APIError.conflict("user_exists", "\(error)")
            }
            call.auditDetail = "user \(r.name) role=\(role.rawValue)"
            return Self.json(["name": r.name, "role": role.rawValue], status: .created)
        }
        route(router, .patch, "/api/v1/users/{name}", "Change a user's role or password (supervisor)", role: .supervisor,
              tag: "administration", schema: object(["role": oneOf(Role.allCases.map(\.rawValue)), "password": password])) { call in
            let name = try call.parameter("name")
            let r = try call.decode(UserUpdateRequest.self)
            if let role = r.role, Role(rawValue: role) == nil {
                throw APIError.invalid("role '\(role)' is not a role; allowed: viewer, operator, supervisor")
            }
            var credential: String?
            if let password = r.password {
                do { credential = try PasswordHasher.credential(for: password) } catch let error as PasswordHasher.Refusal { throw APIError.invalid(error.description) }
            }
            do {
                try store.updateUser(name: name, role: r.role, credential: credential, by: call.user)
            } catch {
                throw APIError.notFound("\(error)")
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
            do {
                return Self.json(try store.auditEntries(limit: limit, afterSeq: after))
            } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the audit log could not be read: \(error)")
            }
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
                                       slowConnectionsClosed: connections.timedOut.load(ordering: .relaxed))
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

extension RobotCommand {
    /// Commands that move the robot or re-enable its drives.
    var needsLease: Bool {
        switch self {
        case .walk, .walkTo, .turn, .turnTo, .lift, .homeLift, .resetFault, .releaseEstop: return true
        case .stop, .measure, .estop: return false
        }
    }
}
