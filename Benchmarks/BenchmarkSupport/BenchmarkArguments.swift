import Foundation

/// A benchmark's (or the fault soak's) command line: `--name value` options with a
/// fallback, and flags. Every benchmark reads its options the same way, so `--seed 7`
/// means the same everywhere.
public struct BenchmarkArguments: Sendable {
    public let words: [String]

    public init(_ words: [String] = CommandLine.arguments) {
        self.words = words
    }

    /// The word after `name`, or `fallback` when it is not given.
    public func string(_ name: String, _ fallback: String) -> String {
        guard let i = words.firstIndex(of: name), i + 1 < words.count else { return fallback }
        return words[i + 1]
    }

    /// The number after `name`; `fallback` when it is not given or is not a number.
    public func int(_ name: String, _ fallback: Int) -> Int { Int(string(name, "")) ?? fallback }
    public func double(_ name: String, _ fallback: Double) -> Double { Double(string(name, "")) ?? fallback }
    public func seed(_ fallback: UInt64 = 1) -> UInt64 { UInt64(string("--seed", "")) ?? fallback }

    /// Whether the flag `name` is given.
    public func has(_ name: String) -> Bool { words.contains(name) }
}

/// A progress line on standard error: unbuffered, and kept apart from the results on
/// standard output.
public func say(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
