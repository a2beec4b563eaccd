import Foundation
import Yams

/// A problem in a configuration, scenario or rig file, with the file, line and field it is about.
public struct ConfigurationFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let column: Int?
    public let field: String
    public let message: String

    public init(file: String, line: Int?, column: Int?, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    public var description: String {
        let place = line.map { "\(file):\($0):\(column ?? 1)" } ?? file
        return field.isEmpty ? "\(place): \(message)" : "\(place): \(field): \(message)"
    }
}

/// Strict, line-aware access to a YAML mapping: unknown keys, wrong types and values
/// out of range are errors that name the field and the line. Shared by the
/// controller's configuration and the simulator's scenario and rig files; it knows
/// nothing of either.
public struct YAMLFields {
    public let node: Node
    public let path: String
    public let file: String

    public static func parse(_ text: String, file: String) throws(ConfigurationFileError) -> YAMLFields {
        if let refusal = YAMLSubset.check(text) {
            throw ConfigurationFileError(file: file, line: refusal.line, column: refusal.column, field: "", message: refusal.message)
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.syntaxError(error, file: file)
        } catch {
            throw ConfigurationFileError(file: file, line: nil, column: nil, field: "", message: "\(error)")
        }
        guard let root else {
            throw ConfigurationFileError(file: file, line: 1, column: 1, field: "", message: "the file is empty")
        }
        let fields = YAMLFields(node: root, path: "", file: file)
        guard root.mapping != nil else { throw fields.error("the top level must be a mapping of keys to values") }
        return fields
    }

    public static func syntaxError(_ error: YamlError, file: String) -> ConfigurationFileError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return ConfigurationFileError(file: file, line: mark.line, column: mark.column, field: "", message: "YAML syntax: \(problem)")
        default:
            return ConfigurationFileError(file: file, line: nil, column: nil, field: "", message: "YAML: \(error)")
        }
    }

    public func error(_ message: String, at node: Node? = nil, field: String? = nil) -> ConfigurationFileError {
        let mark = (node ?? self.node).mark
        return ConfigurationFileError(file: file, line: mark?.line, column: mark?.column, field: field ?? path, message: message)
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Refuses keys outside `allowed`, so a misspelt key is an error rather than ignored.
    public func allowOnly(_ allowed: [String]) throws(ConfigurationFileError) {
        guard let mapping = node.mapping else { throw error("must be a mapping") }
        for (key, _) in mapping {
            let name = key.string ?? "?"
            if !allowed.contains(name) {
                throw error("unknown key '\(name)'; allowed keys are \(allowed.joined(separator: ", "))", at: key, field: childPath(name))
            }
        }
    }

    public func value(_ key: String) -> Node? { node.mapping?[key] }

    public func has(_ key: String) -> Bool { value(key) != nil }

    public func mapping(_ key: String) throws(ConfigurationFileError) -> YAMLFields? {
        guard let child = value(key) else { return nil }
        guard child.mapping != nil else { throw error("must be a mapping", at: child, field: childPath(key)) }
        return YAMLFields(node: child, path: childPath(key), file: file)
    }

    public func list(_ key: String) throws(ConfigurationFileError) -> [YAMLFields] {
        guard let child = value(key) else { return [] }
        guard let sequence = child.sequence else { throw error("must be a list", at: child, field: childPath(key)) }
        return sequence.enumerated().map { YAMLFields(node: $0.element, path: "\(childPath(key))[\($0.offset)]", file: file) }
    }

    /// A list of words: a YAML list of scalars, or one scalar of comma-separated words.
    public func words(_ key: String) throws(ConfigurationFileError) -> [String] {
        guard let child = value(key) else { return [] }
        if let sequence = child.sequence {
            var words: [String] = []
            for (i, element) in sequence.enumerated() {
                guard let text = element.scalar?.string else {
                    throw error("must be a list of words", at: element, field: "\(childPath(key))[\(i)]")
                }
                words.append(text)
            }
            return words
        }
        guard let text = child.scalar?.string else { throw error("must be a word or a list of words", at: child, field: childPath(key)) }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    public func double(_ key: String, default fallback: Double? = nil, in range: ClosedRange<Double>? = nil) throws(ConfigurationFileError) -> Double {
        guard let child = value(key) else {
            if let fallback { return fallback }
            throw error("the key '\(key)' is required", field: childPath(key))
        }
        // Plain decimal (or exponent) notation only, read by Swift rather than by Yams's
        // YAML 1.1 forms (sexagesimal "1:30", ".inf", ".nan"): a setting must be a finite number.
        guard child.scalar != nil, let text = child.string, let number = Double(text.trimmingCharacters(in: .whitespaces)),
              number.isFinite else {
            throw error("'\(child.string ?? "?")' is not a number", at: child, field: childPath(key))
        }
        if let range, !range.contains(number) {
            throw error("\(number) is out of range; allowed \(range.lowerBound) to \(range.upperBound)", at: child, field: childPath(key))
        }
        return number
    }

    public func integer(_ key: String, default fallback: Int? = nil, in range: ClosedRange<Int>? = nil) throws(ConfigurationFileError) -> Int {
        guard let child = value(key) else {
            if let fallback { return fallback }
            throw error("the key '\(key)' is required", field: childPath(key))
        }
        // Plain decimal digits only: Yams's YAML 1.1 integer forms include sexagesimal
        // ("1:30"), whose conversion traps on overflow (found by fuzzing the profile parser,
        // which PUT /api/v1/profiles reaches). Swift's Int(_:) returns nil instead.
        guard child.scalar != nil, let text = child.string, let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw error("'\(child.string ?? "?")' is not a whole number", at: child, field: childPath(key))
        }
        if let range, !range.contains(number) {
            throw error("\(number) is out of range; allowed \(range.lowerBound) to \(range.upperBound)", at: child, field: childPath(key))
        }
        return number
    }

    public func string(_ key: String, default fallback: String? = nil) throws(ConfigurationFileError) -> String {
        guard let child = value(key) else {
            if let fallback { return fallback }
            throw error("the key '\(key)' is required", field: childPath(key))
        }
        guard child.scalar != nil, let text = child.string else {
            throw error("must be text", at: child, field: childPath(key))
        }
        return text
    }

    public func bool(_ key: String, default fallback: Bool) throws(ConfigurationFileError) -> Bool {
        guard let child = value(key) else { return fallback }
        guard let flag = child.bool else {
            throw error("'\(child.string ?? "?")' is not true or false", at: child, field: childPath(key))
        }
        return flag
    }

    /// A value from a fixed set of names.
    public func choice<T>(_ key: String, _ options: [(String, T)], default fallback: T? = nil) throws(ConfigurationFileError) -> T {
        guard value(key) != nil else {
            if let fallback { return fallback }
            throw error("the key '\(key)' is required; allowed \(options.map(\.0).joined(separator: ", "))", field: childPath(key))
        }
        let text = try string(key)
        guard let match = options.first(where: { $0.0 == text }) else {
            throw error("'\(text)' is not allowed; allowed \(options.map(\.0).joined(separator: ", "))", at: value(key), field: childPath(key))
        }
        return match.1
    }
}
