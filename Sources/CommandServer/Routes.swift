import Foundation
import Hummingbird
import HummingbirdWebSocket
import HTTPTypes
import Inspection
import InspectionStore
import Logging
import RobotControl

/// One route as registered: what the OpenAPI document says of it.
struct RouteEntry: Sendable {
    let method: String
    let path: String
    let summary: String
    let role: Role?
    let mutating: Bool
    let requestSchema: JSONValue?
    let produces: String
    let tag: String
}

/// What a handler gets: the request, its session, and its body.
final class Call: @unchecked Sendable {
    let request: Request
    let context: CommandServer.Context
    let session: Authenticator.Session?
    let body: Data
    /// What the audit entry of a mutating call says beyond its route and outcome.
    var auditDetail = ""

    init(request: Request, context: CommandServer.Context, session: Authenticator.Session?, body: Data) {
        self.request = request
        self.context = context
        self.session = session
        self.body = body
    }

    var user: String { session?.user ?? "anonymous" }
    /// The peer's IP address.
    var source: String { context.sourceAddress }

    func parameter(_ name: String) throws(APIError) -> String {
        guard let value = context.parameters.get(name) else { throw .invalid("missing path parameter '\(name)'") }
        return value
    }

    func decode<T: Decodable>(_ type: T.Type) throws(APIError) -> T {
        try JSONCoding.decode(type, from: body)
    }

    var leaseId: String? { Self.leaseHeader.flatMap { request.headers[$0] } }

    static let leaseHeader = HTTPField.Name("X-Lease")
}

extension CommandServer {
    static let bearerPrefix = "Bearer "

    /// The bearer token: from the Authorization header only. A long-lived token is never
    /// taken from a URL (see `TicketBook`).
    static func token(of request: Request) -> String? {
        if let header = request.headers[.authorization], header.hasPrefix(bearerPrefix) {
            return String(header.dropFirst(bearerPrefix.count))
        }
        return nil
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONCoding.encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String, type: String, status: HTTPResponse.Status = .ok, download: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: type]
        if let download { headers[.contentDisposition] = "attachment; filename=\"\(download)\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Registers a route: authentication, role check, body collection, audit of mutating
    /// calls (allowed and refused alike), and an entry in the route table.
    func route(_ router: Router<Context>, _ method: HTTPRequest.Method, _ path: String, _ summary: String, role: Role?,
               tag: String, schema: JSONValue? = nil, produces: String = "application/json", mutating: Bool? = nil, audit: AuditPolicy = .always,
               stopAuthority: Bool = false, maxBody routeMaxBody: Int? = nil, _ handler: @escaping @Sendable (Call) async throws -> Response) {
        let isMutating = mutating ?? (method != .get)
        routeTable.withLock {
            $0.append(RouteEntry(method: method.rawValue, path: path, summary: summary, role: role, mutating: isMutating,
                                 requestSchema: schema, produces: produces, tag: tag))
        }
        let authenticator = self.authenticator
        let store = self.store
        let maxBody = min(routeMaxBody ?? configuration.maxBodyBytes, configuration.maxBodyBytes)
        let logger = self.logger
        let refusals = self.refusals
        router.on(RouterPath(path), method: method) { request, context -> Response in
            var request = request
            var session: Authenticator.Session?
            let action = "\(method.rawValue) \(path)"
            do {
                if stopAuthority {
                    // The e-stop: any token this process issued lately, expired or not.
                    session = try authenticator.stopAuthority(for: Self.token(of: request))
                } else if let role {
                    let s = try authenticator.session(for: Self.token(of: request))
                    session = s
                    guard s.role >= role else { throw APIError.forbidden(s.role, needs: role, to: summary.lowercased()) }
                }
                var body = Data()
                if isMutating {
                    let buffer: ByteBuffer
                    do {
                        buffer = try await request.collectBody(upTo: maxBody)
                    } catch {
                        throw APIError(.contentTooLarge, "too_large", "the request body is larger than \(maxBody) bytes")
                    }
                    body = Data(buffer.readableBytesView)
                }
                let call = Call(request: request, context: context, session: session, body: body)
                let response = try await handler(call)
                if isMutating && audit == .always {
                    try? await store.recordAudit(actor: session?.user ?? "anonymous", action: action,
                                     detail: "ok \(response.status.code)" + (call.auditDetail.isEmpty ? "" : " " + call.auditDetail))
                    logger.info("\(action)", metadata: ["user": "\(session?.user ?? "-")", "status": "\(response.status.code)",
                                                        "detail": "\(call.auditDetail)"])
                }
                return response
            } catch let error as APIError {
                if isMutating && audit != .never {
                    if let user = session?.user {
                        try? await store.recordAudit(actor: user, action: action, detail: "refused \(error.status.code) \(error.code)")
                        logger.notice("\(action) refused", metadata: ["user": "\(user)", "code": "\(error.code)"])
                    } else {
                        // No valid token: counted per address, one audit entry per interval.
                        refusals.count(source: context.sourceAddress, action: action, code: "\(error.status.code) \(error.code)")
                    }
                }
                throw error
            }
        }
    }
}

/// Which outcomes of a mutating route go into the audit log.
enum AuditPolicy: Sendable {
    case always
    /// Heartbeats: only refusals (an accepted keep-alive every 0.25 s would flood the log).
    case refusals
    /// The handler audits itself (log-in, with the attempted name).
    case never
}
