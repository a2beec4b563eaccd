import Foundation

/// A JSON value, for response bodies assembled from parts.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The JSON form of an `Encodable` value.
    init?<T: Encodable>(encoding value: T) {
        guard let data = try? JSONCoding.encoder.encode(value),
              let decoded = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
        self = decoded
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n.isFinite ? n : 0)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// The API's JSON settings: ISO 8601 dates, sorted keys.
enum JSONCoding {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.dateEncodingStrategy = .iso8601
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()

    /// Decodes a request body; a refusal names the field and what was expected.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(APIError) -> T {
        guard !data.isEmpty else { throw APIError(.badRequest, "malformed_json", "the request needs a JSON body") }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            switch error {
            case .dataCorrupted(let context) where context.codingPath.isEmpty:
                throw APIError(.badRequest, "malformed_json", "the body is not valid JSON: \(context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription)")
            case .dataCorrupted(let context):
                throw APIError(.badRequest, "wrong_type", "field '\(path(context.codingPath))': \(context.debugDescription)")
            case .keyNotFound(let key, let context):
                throw APIError(.badRequest, "missing_field", "field '\(path(context.codingPath + [key]))' is required")
            case .typeMismatch(let expected, let context):
                throw APIError(.badRequest, "wrong_type", "field '\(path(context.codingPath))' must be \(describe(expected))")
            case .valueNotFound(let expected, let context):
                throw APIError(.badRequest, "wrong_type", "field '\(path(context.codingPath))' must be \(describe(expected)), not null")
            @unknown default:
                throw APIError(.badRequest, "malformed_json", "the body could not be read: \(error)")
            }
        } catch {
            throw APIError(.badRequest, "malformed_json", "the body could not be read: \(error)")
        }
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.isEmpty ? "(body)" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type, is UInt32.Type, is UInt64.Type, is Int64.Type: return "a whole number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default: return "\(type)"
        }
    }
}
