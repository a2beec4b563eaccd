import FirmwareProtocol

/// Checks a request against the register map before it goes on the wire, so that a
/// wrong unit ID, an unknown register or an out-of-range value is refused with a
/// message instead of an exception or silence from the firmware.
struct RegisterMapGuard: Sendable {
    let devices: [DeviceSpec]

    func deviceName(unit: UInt8) -> String {
        devices.first { $0.unitId == unit }?.name ?? "unit \(unit)"
    }

    func check(unit: UInt8, _ operation: BusOperation) -> BusError.Kind? {
        guard let device = devices.first(where: { $0.unitId == unit }) else {
            return .unknownUnit(known: devices.map(\.unitId))
        }
        let values: [UInt16]?
        switch operation {
        case .writeSingle(_, let value): values = [value]
        case .writeMultiple(_, let written): values = written
        case .readInput, .readHolding: values = nil
        }
        switch device.check(table: operation.table, start: Int(operation.address),
                            count: operation.registerCount, values: values) {
        case nil: return nil
        case .unknownRegister(let allowed)?: return .unknownRegister(allowed: allowed)
        case .splitsField(let field)?: return .unknownRegister(allowed: field)
        case .badCount(let n)?: return .unknownRegister(allowed: "1 to 125 registers per request, not \(n)")
        case .valueOutOfRange(let error)?: return .invalidValue(error)
        }
    }
}
