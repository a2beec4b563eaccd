/// The Modbus table a block lives in.
public enum RegisterTable: String, Sendable, Codable {
    /// Function code 0x04, read-only status.
    case input
    /// Function codes 0x03, 0x06 and 0x10, commands the controller writes.
    case holding
}

/// How a field is laid out in registers.
public enum FieldType: String, Sendable, Codable {
    case u16, i16, u32, i32, bits16, ascii

    /// Registers taken by one value of this type (ASCII fields say their own length).
    public var defaultWordCount: Int {
        switch self {
        case .u16, .i16, .bits16: return 1
        case .u32, .i32: return 2
        case .ascii: return 0
        }
    }
}

/// One named bit of a `bits16` field.
public struct BitSpec: Sendable, Equatable {
    public let bit: Int
    public let name: String

    public init(_ bit: Int, _ name: String) {
        self.bit = bit
        self.name = name
    }
}

/// One field of a register block, as the register map describes it.
///
/// `min` and `max` are in raw register units (before `scale`), so that the check
/// is exact; the engineering value is `raw × scale` in `unit`.
public struct FieldSpec: Sendable, Equatable {
    public let name: String
    public let offset: Int
    public let type: FieldType
    public let words: Int
    public let scale: Double
    public let unit: String?
    public let min: Int64?
    public let max: Int64?
    public let writable: Bool
    public let bits: [BitSpec]
    /// The allowed raw values of an enumerated field (`values` in the map); nil when any
    /// value in `min`...`max` is allowed.
    public let values: [Int64]?

    public init(
        _ name: String, offset: Int, _ type: FieldType, words: Int? = nil,
        scale: Double = 1, unit: String? = nil, min: Int64? = nil, max: Int64? = nil,
        writable: Bool = false, bits: [BitSpec] = [], values: [Int64]? = nil
    ) {
        self.values = values
        self.name = name
        self.offset = offset
        self.type = type
        self.words = words ?? type.defaultWordCount
        self.scale = scale
        self.unit = unit
        self.min = min
        self.max = max
        self.writable = writable
        self.bits = bits
    }

    /// Raw limits, widened to the type's own range where the map sets none.
    public var effectiveRange: ClosedRange<Int64> {
        let typeRange: ClosedRange<Int64>
        switch type {
        case .u16, .bits16: typeRange = 0...Int64(UInt16.max)
        case .i16: typeRange = Int64(Int16.min)...Int64(Int16.max)
        case .u32: typeRange = 0...Int64(UInt32.max)
        case .i32: typeRange = Int64(Int32.min)...Int64(Int32.max)
        case .ascii: typeRange = 0...0
        }
        return (min ?? typeRange.lowerBound)...(max ?? typeRange.upperBound)
    }
}

/// A contiguous run of registers that is read or written in one transaction.
public struct BlockSpec: Sendable, Equatable {
    public let device: String
    public let name: String
    public let table: RegisterTable
    public let start: UInt16
    public let fields: [FieldSpec]
    /// Registers the block spans, from `start` to the end of its last field. Stored, not
    /// computed, because decoders check it on every read in the control loop's tick.
    public let count: Int

    public init(device: String, name: String, table: RegisterTable, start: UInt16, fields: [FieldSpec]) {
        self.device = device
        self.name = name
        self.table = table
        self.start = start
        self.fields = fields
        var end = 0
        for field in fields { end = max(end, field.offset + field.words) }
        self.count = end
    }

    /// Absolute register addresses covered by the block.
    public var addresses: Range<Int> { Int(start)..<(Int(start) + count) }

    public func field(_ name: String) -> FieldSpec? {
        fields.first { $0.name == name }
    }

    /// Checks a raw value against the field's limits and writability.
    public func validate(_ fieldName: String, raw: Int64) throws(ProtocolError) {
        guard let field = field(fieldName) else {
            throw .unknownField(device: device, block: name, field: fieldName)
        }
        let range = field.effectiveRange
        guard range.contains(raw) else {
            throw .valueOutOfRange(
                device: device, block: name, field: fieldName, raw: raw,
                allowed: range, unit: field.unit, scale: field.scale)
        }
        if let values = field.values, !values.contains(raw) {
            throw .invalidValue(device: device, block: name, field: fieldName,
                                reason: "\(raw) is not one of the defined values \(values.map(String.init).joined(separator: ", "))")
        }
        // A command's bit field may set only the bits it defines (protocol 1.1, F3.4): a
        // firmware refuses the others, so a newer controller learns a feature is absent.
        if field.writable, field.type == .bits16, !field.bits.isEmpty {
            let defined = field.bits.reduce(Int64(0)) { $0 | (1 << Int64($1.bit)) }
            if raw & ~defined != 0 {
                throw .invalidValue(device: device, block: name, field: fieldName,
                                    reason: "bits 0x" + String(UInt16(truncatingIfNeeded: raw & ~defined), radix: 16, uppercase: true) + " are not defined; defined: "
                                        + field.bits.map { "\($0.bit) \($0.name)" }.joined(separator: ", "))
            }
        }
    }
}

/// One unit on the bus.
public struct DeviceSpec: Sendable, Equatable {
    public let name: String
    public let unitId: UInt8
    public let deviceType: UInt16
    public let blocks: [BlockSpec]

    public func block(_ name: String) -> BlockSpec? {
        blocks.first { $0.name == name }
    }

    /// The block, if any, that holds every register of `start ..< start + count` in `table`.
    public func block(containing start: Int, count: Int, in table: RegisterTable) -> BlockSpec? {
        blocks.first { block in
            block.table == table && start >= Int(block.start)
                && start + count <= Int(block.start) + block.count
        }
    }
}

extension DeviceSpec {
    /// Why a request to this unit would be refused, as the firmware decides it:
    /// the registers must lie inside one block, and each whole field written must be in range.
    public enum RequestProblem: Sendable, Equatable {
        case unknownRegister(allowed: String)
        /// The range takes one half of a 32-bit field (protocol 1.1, F3.3): exception 2.
        case splitsField(String)
        case badCount(Int)
        case valueOutOfRange(ProtocolError)
    }

    /// Checks a read (`values == nil`) or a write of `values` at `start` in `table`.
    public func check(table: RegisterTable, start: Int, count: Int, values: [UInt16]?) -> RequestProblem? {
        // Modbus: 1-125 registers per read, 1-123 per write (F3.2).
        guard count >= 1, count <= (values == nil ? 125 : 123) else { return .badCount(count) }
        guard let block = block(containing: start, count: count, in: table) else {
            let allowed = blocks.filter { $0.table == table }
                .map { "\($0.name) \($0.start)-\(Int($0.start) + $0.count - 1)" }
                .joined(separator: ", ")
            return .unknownRegister(allowed: "\(table.rawValue) \(allowed.isEmpty ? "none" : allowed)")
        }
        let offset = start - Int(block.start)
        for field in block.fields where field.words == 2 {
            let covered = (offset..<(offset + count)).overlaps(field.offset..<(field.offset + 2))
            let whole = field.offset >= offset && field.offset + 2 <= offset + count
            if covered && !whole { return .splitsField("\(name).\(block.name).\(field.name) is 32 bits: read or write both registers") }
        }
        guard let values else { return nil }
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
                return .valueOutOfRange(error)
            }
        }
        return nil
    }
}
