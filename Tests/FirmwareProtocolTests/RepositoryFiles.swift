import Foundation

/// Files of the repository that tests read (the register map and the vectors).
enum RepositoryFiles {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func json(_ relativePath: String) throws -> Any {
        let data = try Data(contentsOf: root.appendingPathComponent(relativePath))
        return try JSONSerialization.jsonObject(with: data)
    }
}

struct MissingValue: Error, CustomStringConvertible {
    let description: String
}

/// Unwraps or throws with a message; usable where `#require` cannot nest.
func required<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw MissingValue(description: "missing \(what)") }
    return value
}
