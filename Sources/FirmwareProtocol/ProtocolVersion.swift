/// The protocol version a unit reports in its identity block.
///
/// The controller accepts a unit whose major version equals its own and whose minor
/// version is at least the one it needs: minor versions only add registers.
public struct ProtocolVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    public let major: UInt16
    public let minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// The version this build implements.
    public static let current = ProtocolVersion(major: 1, minor: 0)

    public func isCompatible(with required: ProtocolVersion) -> Bool {
        major == required.major && minor >= required.minor
    }

    public static func < (lhs: ProtocolVersion, rhs: ProtocolVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public var description: String { "\(major).\(minor)" }
}
