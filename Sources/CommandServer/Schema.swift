import Foundation

/// JSON Schema fragments for the OpenAPI document's request bodies.
enum Schema {
    static func object(_ properties: [String: JSONValue], required: [String] = []) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("object"), "properties": .object(properties), "additionalProperties": .bool(false)]
        if !required.isEmpty { schema["required"] = .array(required.map { .string($0) }) }
        return .object(schema)
    }
    static let string: JSONValue = .object(["type": .string("string")])
    static let number: JSONValue = .object(["type": .string("number")])
    static let integer: JSONValue = .object(["type": .string("integer"), "minimum": .number(0)])
    static let boolean: JSONValue = .object(["type": .string("boolean")])
    static func oneOf(_ values: [String]) -> JSONValue { .object(["type": .string("string"), "enum": .array(values.map { .string($0) })]) }
    static func string(pattern: String, _ description: String) -> JSONValue {
        .object(["type": .string("string"), "pattern": .string(pattern), "description": .string(description)])
    }
    static func string(length: ClosedRange<Int>) -> JSONValue {
        .object(["type": .string("string"), "minLength": .number(Double(length.lowerBound)), "maxLength": .number(Double(length.upperBound))])
    }
    static func number(_ range: ClosedRange<Double>) -> JSONValue {
        .object(["type": .string("number"), "minimum": .number(range.lowerBound), "maximum": .number(range.upperBound)])
    }
    static func integer(_ range: ClosedRange<Int>) -> JSONValue {
        .object(["type": .string("integer"), "minimum": .number(Double(range.lowerBound)), "maximum": .number(Double(range.upperBound))])
    }
    static let containerNumber = string(pattern: "^[A-Z]{3}[UJZ][0-9]{7}$", "ISO 6346: owner code, category, serial number and check digit (checked)")
    static let userName = string(pattern: "^[A-Za-z0-9._-]{1,32}$", "1 to 32 letters, digits, '-', '_' or '.'")
    static let password: JSONValue = .object(["type": .string("string"), "minLength": .number(Double(PasswordHasher.minimumLength))])
    static let date = integer(19000101...99991231)
}
