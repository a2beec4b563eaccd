import Foundation
import Inspection

/// The procedure profiles in a directory: `NAME.yaml`. Supervisors add or replace them
/// through the API; every file is validated before it is written.
public struct ProfileLibrary: Sendable {
    public let directory: String
    public let defaultName: String

    public init(directory: String, defaultName: String) {
        self.directory = directory
        self.defaultName = defaultName
    }

    public struct Entry: Sendable, Encodable {
        public let name: String
        public let version: Int
        public let title: String
        public let faces: [String]
        public let heightsMetres: [Double]
    }

    static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
            && !name.hasPrefix(".")
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent("\(name).yaml") }

    public func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.filter(Self.validName).sorted()
    }

    public func load(_ name: String?) throws(APIError) -> ProcedureProfile {
        let name = name ?? defaultName
        guard Self.validName(name), FileManager.default.fileExists(atPath: path(name)) else {
            throw .notFound("no profile '\(name)'; available: \(names().joined(separator: ", "))")
        }
        do {
            return try ProcedureProfile.load(path: path(name))
        } catch {
            throw .invalid("profile '\(name)' does not validate: \(error.description)")
        }
    }

    public func text(_ name: String) throws(APIError) -> String {
        guard Self.validName(name), let data = FileManager.default.contents(atPath: path(name)) else {
            throw .notFound("no profile '\(name)'; available: \(names().joined(separator: ", "))")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Validates `text` as a profile and writes it as `name`.
    public func save(_ name: String, text: String) throws(APIError) -> ProcedureProfile {
        guard Self.validName(name) else {
            throw .invalid("profile name '\(name)' is not allowed; use 1 to 64 letters, digits, '-', '_' or '.'")
        }
        let profile: ProcedureProfile
        do {
            profile = try ProcedureProfile.parse(text, file: "\(name).yaml")
        } catch {
            throw .invalid("the profile does not validate:\n\(error.description)")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)), options: .atomic)
        } catch {
            throw APIError(.internalServerError, "write_failed", "the profile could not be written to \(directory): \(error.localizedDescription)")
        }
        return profile
    }
}
