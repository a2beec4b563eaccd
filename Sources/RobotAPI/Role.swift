/// What a user may do. Each role may do everything the roles below it may.
public enum Role: String, Sendable, Codable, Comparable, CaseIterable {
    /// Watch: state, telemetry, scans, reports. Can always press e-stop.
    case viewer
    /// Also command the robot and run scans (with the motion lease).
    case `operator`
    /// Also take over the lease, manage profiles, instruments and users, read the audit log.
    case supervisor

    public var rank: Int {
        switch self {
        case .viewer: return 0
        case .operator: return 1
        case .supervisor: return 2
        }
    }

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}
