/// A field's value decoded generically from the map, for display and for checks
/// that compare the typed codecs against the map.
public enum FieldValue: Sendable, Equatable, CustomStringConvertible {
    case integer(Int64)
    case text(String)

    public var description: String {
        switch self {
        case .integer(let v): return String(v)
        case .text(let s): return s
        }
    }
}

extension BlockSpec {
    /// Decodes every field of the block by its map description alone.
    public func decodeFields(_ registers: [UInt16]) throws(ProtocolError) -> [(field: FieldSpec, value: FieldValue)] {
        guard registers.count == count else {
            throw .wrongLength(device: device, block: name, expected: count, got: registers.count)
        }
        return fields.map { field in
            let i = field.offset
            let value: FieldValue
            switch field.type {
            case .u16, .bits16: value = .integer(Int64(registers[i]))
            case .i16: value = .integer(Int64(RegisterWords.i16(registers, i)))
            case .u32: value = .integer(Int64(RegisterWords.u32(registers, i)))
            case .i32: value = .integer(Int64(RegisterWords.i32(registers, i)))
            case .ascii: value = .text(RegisterWords.ascii(registers, i, words: field.words))
            }
            return (field, value)
        }
    }

    /// Encodes field values given by name (missing fields are zero) by the map alone.
    public func encodeFields(_ values: [String: FieldValue]) throws(ProtocolError) -> [UInt16] {
        var registers = [UInt16](repeating: 0, count: count)
        for (name, value) in values {
            guard let field = field(name) else { throw .unknownField(device: device, block: self.name, field: name) }
            switch (field.type, value) {
            case (.ascii, .text(let text)):
                RegisterWords.putASCII(text, &registers, field.offset, words: field.words)
            case (.u16, .integer(let v)), (.bits16, .integer(let v)), (.i16, .integer(let v)):
                try validate(name, raw: v)
                registers[field.offset] = UInt16(truncatingIfNeeded: v)
            case (.u32, .integer(let v)), (.i32, .integer(let v)):
                try validate(name, raw: v)
                RegisterWords.put(UInt32(truncatingIfNeeded: v), &registers, field.offset)
            default:
                throw .invalidValue(device: device, block: self.name, field: name, reason: "\(value) does not fit a \(field.type.rawValue) field")
            }
        }
        return registers
    }
}

extension FieldSpec {
    /// The value in engineering units with its unit, e.g. "1.25 m" or "0x0027".
    public func formatted(_ value: FieldValue) -> String {
        guard case .integer(let raw) = value else { return "\"\(value)\"" }
        if type == .bits16 {
            let hex = String(raw, radix: 16)
            let set = bits.filter { raw & (1 << Int64($0.bit)) != 0 }.map(\.name)
            return "0x" + String(repeating: "0", count: Swift.max(0, 4 - hex.count)) + hex + (set.isEmpty ? "" : " [" + set.joined(separator: ", ") + "]")
        }
        let number = EngineeringFormat.number(raw, scale: scale)
        return unit.map { "\(number) \($0)" } ?? number
    }
}

/// Raw register values shown in engineering units with as many decimals as the scale carries.
enum EngineeringFormat {
    static func number(_ raw: Int64, scale: Double) -> String {
        if scale == 1 { return String(raw) }
        let decimals = Swift.max(0, Int((-log10Approx(scale)).rounded()))
        return formatFixed(Double(raw) * scale, decimals: decimals)
    }

    static func log10Approx(_ x: Double) -> Double {
        var v = x
        var exponent = 0.0
        while v < 1 { v *= 10; exponent -= 1 }
        while v >= 10 { v /= 10; exponent += 1 }
        return exponent
    }

    static func formatFixed(_ value: Double, decimals: Int) -> String {
        var factor = 1.0
        for _ in 0..<decimals { factor *= 10 }
        let scaled = (abs(value) * factor).rounded()
        let whole = Int64(scaled / factor)
        let fraction = Int64(scaled) - whole * Int64(factor)
        let sign = value < 0 && scaled != 0 ? "-" : ""
        guard decimals > 0 else { return "\(sign)\(whole)" }
        let fractionText = String(fraction)
        return "\(sign)\(whole)." + String(repeating: "0", count: decimals - fractionText.count) + fractionText
    }
}
