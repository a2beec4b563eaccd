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
        let start = Int(operation.address)
        let count = operation.registerCount
        guard count >= 1, count <= 125,
              let block = device.block(containing: start, count: count, in: operation.table) else {
            let allowed = device.blocks.filter { $0.table == operation.table }
                .map { "\($0.name) \($0.start)-\(Int($0.start) + $0.count - 1)" }
                .joined(separator: ", ")
            return .unknownRegister(allowed: "\(operation.table.rawValue) \(allowed.isEmpty ? "none" : allowed)")
        }
        let values: [UInt16]
        switch operation {
        case .writeSingle(_, let value): values = [value]
        case .writeMultiple(_, let written): values = written
        default: return nil
        }
        let offset = start - Int(block.start)
        for field in block.fields where field.offset >= offset && field.offset + field.words <= offset + count {
            let i = field.offset - offset
            let raw: Int64
            switch field.type {
            case .u16, .bits16: raw = Int64(values[i])
            case .i16: raw = Int64(Int16(bitPattern: values[i]))
            case .u32: raw = Int64(UInt32(values[i]) << 16 | UInt32(values[i + 1]))
            case .i32: raw = Int64(Int32(bitPattern: UInt32(values[i]) << 16 | UInt32(values[i + 1])))
            case .ascii: continue
            }
            do {
                try block.validate(field.name, raw: raw)
            } catch {
                return .invalidValue(error)
            }
        }
        return nil
    }
}
