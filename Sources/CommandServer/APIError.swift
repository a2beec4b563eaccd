import Foundation
import Hummingbird

/// An error the API returns as JSON: `{"error": {"code": ..., "message": ...}}`, with a
/// message that says what was wrong and what is allowed.
public struct APIError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    /// Extra response headers (Retry-After on a rate limit).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body())))
    }

    func body() -> [UInt8] {
        struct Envelope: Encodable {
            struct Detail: Encodable { let code: String; let message: String }
            let error: Detail
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(Envelope(error: .init(code: code, message: message)))) ?? Data("{}".utf8))
    }

    // Common refusals.
    static let noToken = APIError(.unauthorized, "unauthenticated",
                                  "no token: log in with POST /api/v1/login and send 'Authorization: Bearer TOKEN'")
    static let badToken = APIError(.unauthorized, "bad_token", "the token is not valid (unknown, or from before a restart); log in again")
    static let expiredToken = APIError(.unauthorized, "token_expired", "the token has expired; log in again")

    static func forbidden(_ role: Role, needs: Role, to action: String) -> APIError {
        APIError(.forbidden, "forbidden", "a \(role.rawValue) may not \(action); it needs the \(needs.rawValue) role or above")
    }

    static func notFound(_ what: String) -> APIError { APIError(.notFound, "not_found", what) }
    static func invalid(_ message: String) -> APIError { APIError(.unprocessableContent, "invalid", message) }
    static func conflict(_ code: String, _ message: String) -> APIError { APIError(.conflict, code, message) }
}
