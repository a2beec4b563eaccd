/// Errors from encoding or decoding register blocks and frames.
///
/// Each case names the device, block and field, and says what is allowed.
public enum ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    case wrongLength(device: String, block: String, expected: Int, got: Int)
    case unknownField(device: String, block: String, field: String)
    case valueOutOfRange(
        device: String, block: String, field: String, raw: Int64,
        allowed: ClosedRange<Int64>, unit: String?, scale: Double)
    case invalidValue(device: String, block: String, field: String, reason: String)
    case versionMismatch(device: String, found: ProtocolVersion, required: ProtocolVersion)
    case wrongDeviceType(unitId: UInt8, expected: UInt16, found: UInt16)
    case badFrame(String)

    public var description: String {
        switch self {
        case let .wrongLength(device, block, expected, got):
            return "\(device).\(block): expected \(expected) registers, got \(got)"
        case let .unknownField(device, block, field):
            return "\(device).\(block) has no field '\(field)'"
        case let .valueOutOfRange(device, block, field, raw, allowed, unit, scale):
            return "\(device).\(block).\(field) = \(Self.show(raw, unit: unit, scale: scale)) is out of range; "
                + "allowed \(Self.show(allowed.lowerBound, unit: unit, scale: scale)) "
                + "to \(Self.show(allowed.upperBound, unit: unit, scale: scale))"
        case let .invalidValue(device, block, field, reason):
            return "\(device).\(block).\(field): \(reason)"
        case let .versionMismatch(device, found, required):
            return "\(device) speaks protocol \(found), this controller needs \(required.major).x with minor ≥ \(required.minor)"
        case let .wrongDeviceType(unitId, expected, found):
            return "unit \(unitId) reports device type \(found), expected \(expected); check the unit IDs on the bus"
        case let .badFrame(reason):
            return "bad frame: \(reason)"
        }
    }

    private static func show(_ raw: Int64, unit: String?, scale: Double) -> String {
        let number = EngineeringFormat.number(raw, scale: scale)
        return unit.map { "\(number) \($0)" } ?? number
    }
}
