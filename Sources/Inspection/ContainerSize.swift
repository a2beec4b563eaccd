/// ISO 668 container sizes the robot inspects (external dimensions, metres).
///
/// The simulator has its own copy of this table: it may share nothing with the
/// controller above the firmware protocol.
public enum ContainerSize: String, Sendable, Codable, CaseIterable {
    case twentyFoot = "22G1"
    case fortyFoot = "42G1"
    case fortyFootHighCube = "45G1"
    case fortyFiveFootHighCube = "L5G1"

    /// Accepts the ISO size-type code or a plain name such as `40ft` or `40ft-hc`.
    public init?(name: String) {
        switch name.lowercased() {
        case "22g1", "20ft", "20": self = .twentyFoot
        case "42g1", "40ft", "40": self = .fortyFoot
        case "45g1", "40ft-hc", "40hc": self = .fortyFootHighCube
        case "l5g1", "45ft-hc", "45hc": self = .fortyFiveFootHighCube
        default: return nil
        }
    }

    public var lengthMetres: Double {
        switch self {
        case .twentyFoot: return 6.058
        case .fortyFoot, .fortyFootHighCube: return 12.192
        case .fortyFiveFootHighCube: return 13.716
        }
    }

    public var widthMetres: Double { 2.438 }

    public var heightMetres: Double {
        switch self {
        case .twentyFoot, .fortyFoot: return 2.591
        case .fortyFootHighCube, .fortyFiveFootHighCube: return 2.896
        }
    }
}
