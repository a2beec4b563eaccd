/// Modbus function codes this protocol uses.
public enum FunctionCode: UInt8, Sendable, CaseIterable {
    case readHoldingRegisters = 0x03
    case readInputRegisters = 0x04
    case writeSingleRegister = 0x06
    case writeMultipleRegisters = 0x10
}

/// Modbus exception codes and what each means on this robot.
public enum ModbusException: UInt8, Error, Sendable, CaseIterable, CustomStringConvertible {
    case illegalFunction = 1
    case illegalDataAddress = 2
    case illegalDataValue = 3
    case serverDeviceFailure = 4
    case acknowledge = 5
    case serverDeviceBusy = 6

    public var description: String {
        switch self {
        case .illegalFunction: return "illegal function (only 0x03, 0x04, 0x06, 0x10 are implemented)"
        case .illegalDataAddress: return "illegal data address (the range is not inside one block of the unit's map, or splits a 32-bit field)"
        case .illegalDataValue: return "illegal data value (a count outside 1-125 for reads or 1-123 for writes, a value outside the field's range or values, or an undefined command bit)"
        case .serverDeviceFailure: return "cannot do this now (the drive's state, halt or homing does not allow it; nothing was changed)"
        case .acknowledge: return "acknowledge (not used by this protocol)"
        case .serverDeviceBusy: return "device busy (booting; retry later)"
        }
    }
}

/// Pure-Swift Modbus RTU framing: CRC-16/MODBUS, request builders and response parsing.
///
/// The controller talks through libmodbus; this exists so that the protocol's test
/// vectors, the simulator's receive path and its fault injection can work on bytes.
public enum ModbusRTUFrame {
    /// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF). Sent low byte first.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0xFFFF
        for byte in bytes {
            crc ^= UInt16(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1
            }
        }
        return crc
    }

    /// Appends the CRC, low byte first.
    public static func sealed(_ body: [UInt8]) -> [UInt8] {
        let crc = crc16(body)
        return body + [UInt8(crc & 0xFF), UInt8(crc >> 8)]
    }

    public static func hasValidCRC(_ frame: [UInt8]) -> Bool {
        guard frame.count >= 4 else { return false }
        let body = frame.dropLast(2)
        let crc = crc16(body)
        return frame[frame.count - 2] == UInt8(crc & 0xFF) && frame[frame.count - 1] == UInt8(crc >> 8)
    }

    public static func readRequest(unit: UInt8, function: FunctionCode, address: UInt16, count: UInt16) -> [UInt8] {
        sealed([unit, function.rawValue, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)])
    }

    public static func writeSingleRequest(unit: UInt8, address: UInt16, value: UInt16) -> [UInt8] {
        sealed([unit, FunctionCode.writeSingleRegister.rawValue, UInt8(address >> 8), UInt8(address & 0xFF),
                UInt8(value >> 8), UInt8(value & 0xFF)])
    }

    public static func writeMultipleRequest(unit: UInt8, address: UInt16, values: [UInt16]) -> [UInt8] {
        var body: [UInt8] = [unit, FunctionCode.writeMultipleRegisters.rawValue, UInt8(address >> 8), UInt8(address & 0xFF),
                             UInt8(values.count >> 8), UInt8(values.count & 0xFF), UInt8(values.count * 2)]
        for v in values { body += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        return sealed(body)
    }

    public static func readResponse(unit: UInt8, function: FunctionCode, values: [UInt16]) -> [UInt8] {
        var body: [UInt8] = [unit, function.rawValue, UInt8(values.count * 2)]
        for v in values { body += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        return sealed(body)
    }

    public static func exceptionResponse(unit: UInt8, function: UInt8, exception: ModbusException) -> [UInt8] {
        sealed([unit, function | 0x80, exception.rawValue])
    }

    /// The register values of a read response, or the exception it carries.
    public enum ReadResult: Equatable, Sendable {
        case values([UInt16])
        case exception(ModbusException)
    }

    public static func parseReadResponse(_ frame: [UInt8], unit: UInt8, function: FunctionCode) throws(ProtocolError) -> ReadResult {
        guard frame.count >= 5 else { throw .badFrame("\(frame.count) bytes is shorter than any response") }
        guard hasValidCRC(frame) else { throw .badFrame("CRC mismatch") }
        guard frame[0] == unit else { throw .badFrame("reply from unit \(frame[0]), expected \(unit)") }
        if frame[1] == function.rawValue | 0x80 {
            guard let exception = ModbusException(rawValue: frame[2]) else {
                throw .badFrame("unknown exception code \(frame[2])")
            }
            return .exception(exception)
        }
        guard frame[1] == function.rawValue else { throw .badFrame("function \(frame[1]), expected \(function.rawValue)") }
        let byteCount = Int(frame[2])
        guard byteCount % 2 == 0, frame.count == 5 + byteCount else {
            throw .badFrame("byte count \(byteCount) does not match frame length \(frame.count)")
        }
        var values: [UInt16] = []
        values.reserveCapacity(byteCount / 2)
        for i in stride(from: 3, to: 3 + byteCount, by: 2) {
            values.append(UInt16(frame[i]) << 8 | UInt16(frame[i + 1]))
        }
        return .values(values)
    }

    /// The full length of a request frame whose first `prefix` bytes have arrived, or
    /// `nil` if more bytes are needed to tell. Used by a server reading a serial stream.
    public static func expectedRequestLength(prefix: [UInt8]) -> Int? {
        guard prefix.count >= 2 else { return nil }
        switch prefix[1] {
        case FunctionCode.readHoldingRegisters.rawValue, FunctionCode.readInputRegisters.rawValue,
             FunctionCode.writeSingleRegister.rawValue:
            return 8
        case FunctionCode.writeMultipleRegisters.rawValue:
            guard prefix.count >= 7 else { return nil }
            return 9 + Int(prefix[6])
        default:
            return nil
        }
    }

    /// The length of the normal reply to a valid request.
    public static func expectedResponseLength(request: [UInt8]) -> Int {
        guard request.count >= 6 else { return 5 }
        switch request[1] {
        case FunctionCode.readHoldingRegisters.rawValue, FunctionCode.readInputRegisters.rawValue:
            let count = Int(request[4]) << 8 | Int(request[5])
            return 5 + 2 * count
        case FunctionCode.writeSingleRegister.rawValue, FunctionCode.writeMultipleRegisters.rawValue:
            return 8
        default:
            return 5
        }
    }
}

extension Array where Element == UInt8 {
    /// Lower-case hex with spaces, as the test vectors write frames.
    public var hexString: String {
        map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: " ")
    }

    /// Parses "01 03 00 10" (spaces optional).
    public init?(hexString: String) {
        let digits = hexString.filter { !$0.isWhitespace }
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self = bytes
    }
}
