import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Inspection
import InspectionStore
import Logging
import RobotControl


extension CommandServer {
    /// How long POST /api/v1/estop waits for the loop to latch the stop (25 ticks at
    /// 100 Hz) before it answers 503: the loop latches it on its next tick.
    static let estopLatchTimeoutSeconds = 0.25

    func registerRoutes(_ router: Router<Context>) {
        registerSessionRoutes(router)
        registerRobotRoutes(router)
        registerScanRoutes(router)
        registerAdministrationRoutes(router)
        registerInstrumentRoutes(router)
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
              schema: Schema.object(["name": Schema.string, "password": Schema.string], required: ["name", "password"]), audit: .never,
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
              role: .viewer, tag: "session", schema: Schema.object(["path": Schema.string], required: ["path"]), audit: .refusals) { call in
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
              schema: Schema.object(["client": Schema.string])) { call in
            let client = call.body.isEmpty ? "api" : (try call.decode(LeaseRequest.self).client ?? "api")
            let holder = try lease.acquire(user: call.user, client: StoredText.capped(client, bytes: 64))
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
              schema: Schema.object(["client": Schema.string])) { call in
            let client = call.body.isEmpty ? "api" : (try call.decode(LeaseRequest.self).client ?? "api")
            let (holder, previous) = lease.takeOver(user: call.user, client: StoredText.capped(client, bytes: 64))
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
        let commandSchema = Schema.object([
            "type": Schema.oneOf(CommandRequest.types), "metres": Schema.number, "speedMetresPerSecond": Schema.number, "xMetres": Schema.number, "yMetres": Schema.number,
            "degrees": Schema.number, "headingDegrees": Schema.number, "heightMetres": Schema.number, "seconds": Schema.number, "wait": Schema.boolean, "waitSeconds": Schema.number,
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
        guard let type = CommandType(rawValue: r.type) else {
            throw .invalid("unknown command type '\(r.type)'; allowed: \(CommandRequest.types.joined(separator: ", "))")
        }
        switch type {
        case .walk:
            let metres = try need(r.metres, "metres")
            try check(metres, "walk distance", -50, 50, "m")
            return .walk(metres: metres, speedMetresPerSecond: speed)
        case .walkTo:
            let x = try need(r.xMetres, "xMetres"), y = try need(r.yMetres, "yMetres")
            try check(x, "x", -1000, 1000, "m")
            try check(y, "y", -1000, 1000, "m")
            return .walkTo(x: x, y: y, speedMetresPerSecond: speed)
        case .turn:
            let degrees = try need(r.degrees, "degrees")
            try check(degrees, "turn", -360, 360, "degrees")
            return .turn(degrees: degrees)
        case .turnTo:
            let heading = try need(r.headingDegrees, "headingDegrees")
            try check(heading, "heading", -180, 180, "degrees")
            return .turnTo(headingDegrees: heading)
        case .lift:
            let height = try need(r.heightMetres, "heightMetres")
            try check(height, "lift height", c.liftMinimumMetres, c.liftMaximumMetres, "m")
            return .lift(heightMetres: height)
        case .home: return .homeLift
        case .measure:
            let seconds = try need(r.seconds, "seconds")
            try check(seconds, "measurement time", 0.1, 600, "s")
            return .measure(seconds: seconds)
        case .resetFault: return .resetFault
        case .stop: return .stop
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
