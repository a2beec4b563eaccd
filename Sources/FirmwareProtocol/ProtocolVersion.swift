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

    /// The version this build implements (and the simulator reports).
    public static let current = ProtocolVersion(major: 1, minor: 1)
    /// The oldest version the controller accepts: a 1.0 unit works, without the 1.1
    /// features (`ProtocolFeatures`), which the controller lists at start.
    public static let minimumSupported = ProtocolVersion(major: 1, minor: 0)

    /// True when a unit speaking this version implements the 1.1 rules and blocks.
    public var hasBootBlock: Bool { self >= ProtocolVersion(major: 1, minor: 1) }

    public func isCompatible(with required: ProtocolVersion) -> Bool {
        major == required.major && minor >= required.minor
    }

    public static func < (lhs: ProtocolVersion, rhs: ProtocolVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public var description: String { "\(major).\(minor)" }
}
