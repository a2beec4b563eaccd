import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
@_exported import RobotAPI
import Synchronization
import WSClient

/// A client of robotd's command API (REST + WebSocket), for robotctl, test rigs, tests
/// and benchmarks. It speaks JSON and hands back what the server said, errors included.
public final class CommandClient: @unchecked Sendable {
    public let baseURL: URL
    /// The session token and the motion lease, under a lock: a keep-alive task reads them
    /// while the caller logs in, takes a lease or returns it.
    private let credentials = Mutex<(token: String?, leaseId: String?)>((nil, nil))
    public var token: String? {
        get { credentials.withLock { $0.token } }
        set { credentials.withLock { $0.token = newValue } }
    }
    public var leaseId: String? {
        get { credentials.withLock { $0.leaseId } }
        set { credentials.withLock { $0.leaseId = newValue } }
    }
    let session: URLSession

    public init(baseURL: URL, token: String? = nil) {
        self.baseURL = baseURL
        credentials.withLock { $0.token = token }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 130
        configuration.httpMaximumConnectionsPerHost = 8
        session = URLSession(configuration: configuration)
    }

    /// What the server answered.
    public struct Reply: Sendable {
        public let status: Int
        public let body: Data
        public let headers: [String: String]

        public var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        public var object: [String: Any] { (json as? [String: Any]) ?? [:] }
        public var text: String { String(decoding: body, as: UTF8.self) }
        /// The error envelope's code and message, if this is an error.
        public var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
        public var errorMessage: String? { (object["error"] as? [String: Any])?["message"] as? String }
        public var isSuccess: Bool { (200..<300).contains(status) }

        /// The body as one of the API's wire types (`RobotAPI`).
        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try APICoding.decoder().decode(T.self, from: body)
        }
    }

    /// The robot's state, typed (`GET /api/v1/state`).
    public func state() async throws -> TelemetryFrame {
        let reply = try await send("GET", "/api/v1/state")
        guard reply.isSuccess else { throw Failure(description: "GET /api/v1/state: \(reply.status) \(reply.text)") }
        return try reply.decode(TelemetryFrame.self)
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Sends a request. `body` may be an Encodable-free dictionary (JSON), raw Data, or nil.
    public func send(_ method: String, _ path: String, json: Any? = nil, raw: Data? = nil, contentType: String? = nil,
                     token: String?? = nil, lease: String?? = nil, timeout: Double = 130) async throws -> Reply {
        guard let url = URL(string: path, relativeTo: baseURL) else { throw Failure(description: "bad path \(path)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        if let t = token ?? self.token { request.setValue("Bearer \(t)", forHTTPHeaderField: "Authorization") }
        if let l = lease ?? self.leaseId { request.setValue(l, forHTTPHeaderField: "X-Lease") }
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let raw {
            request.httpBody = raw
            request.setValue(contentType ?? "application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw Failure(description: "cannot reach robotd at \(baseURL.absoluteString): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else { throw Failure(description: "no HTTP answer from \(baseURL.absoluteString)") }
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields { headers["\(k)".lowercased()] = "\(v)" }
        return Reply(status: http.statusCode, body: data, headers: headers)
    }

    /// Logs in and keeps the token.
    @discardableResult
    public func logIn(name: String, password: String) async throws -> Reply {
        let reply = try await send("POST", "/api/v1/login", json: ["name": name, "password": password], token: .some(nil))
        if reply.isSuccess { token = reply.object["token"] as? String }
        return reply
    }

    /// Acquires the motion lease and keeps its id.
    @discardableResult
    public func acquireLease(client: String) async throws -> Reply {
        let reply = try await send("POST", "/api/v1/lease", json: ["client": client])
        if reply.isSuccess { leaseId = reply.object["lease"] as? String }
        return reply
    }

    public func keepAlive() async throws -> Reply {
        try await send("POST", "/api/v1/lease/keepalive", timeout: 5)
    }

    /// Sends a command; with `wait`, answers when it is final.
    public func command(_ fields: [String: Any], wait: Bool = false) async throws -> Reply {
        var body = fields
        if wait { body["wait"] = true }
        return try await send("POST", "/api/v1/commands", json: body)
    }

    /// Keeps the lease alive every `periodSeconds` until the returned task is cancelled.
    public func keepLeaseAlive(periodSeconds: Double = 0.25) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                _ = try? await keepAlive()
                try? await Task.sleep(nanoseconds: UInt64(periodSeconds * 1e9))
            }
        }
    }

    /// The WebSocket URL for telemetry, with a one-time ticket in the query (the bearer
    /// token never goes into a URL).
    public func webSocketURL() async throws -> String {
        let reply = try await send("POST", "/api/v1/tickets", json: ["path": "/api/v1/ws"])
        guard reply.isSuccess, let ticket = reply.object["ticket"] as? String else {
            throw Failure(description: "no WebSocket ticket (\(reply.status)): \(reply.errorMessage ?? reply.text)")
        }
        var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false) ?? URLComponents()
        components.scheme = baseURL.scheme == "https" ? "wss" : "ws"
        components.path = "/api/v1/ws"
        components.queryItems = [URLQueryItem(name: "ticket", value: ticket)]
        return components.string ?? ""
    }

    /// Opens the telemetry WebSocket and calls `onMessage` with each text message until it
    /// returns false or the connection ends.
    public func watch(logger: Logger = Logger(label: "robotctl.ws"), onMessage: @escaping @Sendable (String) async -> Bool) async throws {
        _ = try await WebSocketClient.connect(url: try await webSocketURL(), logger: logger) { inbound, _, _ in
            for try await message in inbound.messages(maxSize: 1 << 20) {
                if case .text(let text) = message {
                    if await !onMessage(text) { break }
                }
            }
        }
    }
}
