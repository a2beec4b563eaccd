/// Big-endian word helpers: the high word of a 32-bit value comes first.
enum RegisterWords {
    @inline(__always)
    static func u32(_ r: [UInt16], _ at: Int) -> UInt32 {
        UInt32(r[at]) << 16 | UInt32(r[at + 1])
    }

    @inline(__always)
    static func i32(_ r: [UInt16], _ at: Int) -> Int32 {
        Int32(bitPattern: u32(r, at))
    }

    @inline(__always)
    static func i16(_ r: [UInt16], _ at: Int) -> Int16 {
        Int16(bitPattern: r[at])
    }

    @inline(__always)
    static func put(_ value: UInt32, _ r: inout [UInt16], _ at: Int) {
        r[at] = UInt16(truncatingIfNeeded: value >> 16)
        r[at + 1] = UInt16(truncatingIfNeeded: value)
    }

    @inline(__always)
    static func put(_ value: Int32, _ r: inout [UInt16], _ at: Int) {
        put(UInt32(bitPattern: value), &r, at)
    }

    /// ASCII, two characters a register, first character in the high byte, NUL padded.
    static func ascii(_ r: [UInt16], _ at: Int, words: Int) -> String {
        var bytes: [UInt8] = []
        for i in at..<(at + words) {
            bytes.append(UInt8(r[i] >> 8))
            bytes.append(UInt8(r[i] & 0xFF))
        }
        let trimmed = bytes.prefix { $0 != 0 }
        return String(decoding: trimmed, as: UTF8.self)
    }

    static func putASCII(_ text: String, _ r: inout [UInt16], _ at: Int, words: Int) {
        var bytes = Array(text.utf8.prefix(words * 2))
        bytes += Array(repeating: 0, count: words * 2 - bytes.count)
        for i in 0..<words {
            r[at + i] = UInt16(bytes[2 * i]) << 8 | UInt16(bytes[2 * i + 1])
        }
    }
}

/// A block that can be read from or written to a unit in one transaction.
/// A value in raw register units, rounded and held inside a field's range (NaN goes to
/// the bottom of the range). For set-points the loop computes from its configuration.
public func clampedRaw(_ value: Double, to range: ClosedRange<Int64>) -> UInt16 {
    let low = Double(range.lowerBound), high = Double(range.upperBound)
    guard !value.isNaN else { return UInt16(clamping: range.lowerBound) }
    return UInt16(clamping: Int64(max(low, min(high, value.rounded()))))
}

public protocol RegisterBlock: Sendable, Equatable {
    /// Where the block sits and what its fields are.
    static var spec: BlockSpec { get }
    /// Decodes the block from exactly `spec.count` registers.
    init(registers: [UInt16]) throws(ProtocolError)
    /// Encodes the block, checking every field against the map's limits.
    func registers() throws(ProtocolError) -> [UInt16]
}

extension RegisterBlock {
    static func checkLength(_ registers: [UInt16]) throws(ProtocolError) {
        guard registers.count == spec.count else {
            throw .wrongLength(device: spec.device, block: spec.name, expected: spec.count, got: registers.count)
        }
    }

    static func check(_ field: String, _ raw: some BinaryInteger) throws(ProtocolError) {
        try spec.validate(field, raw: Int64(raw))
    }
}
