import FirmwareProtocol

/// A failed bus transaction: which device, which registers, and what happened.
///
/// The message says what to check, so a rig operator can act on it without a debugger.
public struct BusError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No reply within the response timeout.
        case timeout(milliseconds: Int)
        /// A reply arrived with a bad CRC (noise, baud mismatch, two talkers).
        case crcMismatch
        /// The unit answered with a Modbus exception.
        case exception(code: UInt8)
        /// A unit other than the one addressed answered.
        case wrongUnitReplied
        /// A reply that is not a valid answer to the request (garbage, wrong length).
        case malformedReply(String)
        /// The serial line or socket is gone (unplugged, closed, reset).
        case linkDown(String)
        /// The request names a unit ID that has no device in the register map.
        case unknownUnit(known: [UInt8])
        /// The request's register range is not inside one block of the unit's map.
        case unknownRegister(allowed: String)
        /// A value failed the map's range check before it was sent.
        case invalidValue(ProtocolError)
        /// The unit's identity block is not what the map expects.
        case incompatibleDevice(ProtocolError)
        /// The bus was stopped before the request ran.
        case busStopped
        /// Any other error from the C library.
        case io(code: Int32, message: String)
    }

    public let kind: Kind
    public let unitId: UInt8
    /// Device name from the register map, or "unit N" if the map has none.
    public let device: String
    /// What was attempted, e.g. "read input registers 16-26".
    public let operation: String

    public init(_ kind: Kind, unitId: UInt8, device: String, operation: String) {
        self.kind = kind
        self.unitId = unitId
        self.device = device
        self.operation = operation
    }

    /// True for errors that a retry of the same request may clear.
    public var isTransient: Bool {
        switch kind {
        case .timeout, .crcMismatch, .malformedReply, .wrongUnitReplied: return true
        case .exception(let code): return code == ModbusException.serverDeviceBusy.rawValue
        default: return false
        }
    }

    public var description: String {
        "\(device) (unit \(unitId)), \(operation): \(reason)"
    }

    public var reason: String {
        switch kind {
        case .timeout(let ms):
            return "no reply within \(ms) ms; check the cable, the unit ID, the baud rate and that the unit is powered"
        case .crcMismatch:
            return "reply failed its CRC check; check the baud rate, termination and for a second master on the line"
        case .exception(let code):
            if let known = ModbusException(rawValue: code) { return "Modbus exception \(code): \(known)" }
            return "Modbus exception \(code) (not defined by the protocol)"
        case .wrongUnitReplied:
            return "a different unit answered; two units share an ID or the line carries a stale reply"
        case .malformedReply(let why):
            return "malformed reply (\(why))"
        case .linkDown(let why):
            return "link down (\(why)); check the cable or adapter, the bus will reconnect when it is back"
        case .unknownUnit(let known):
            return "no device with this unit ID in the register map; known units are \(known.map(String.init).joined(separator: ", "))"
        case .unknownRegister(let allowed):
            return "registers outside the unit's map; allowed blocks: \(allowed)"
        case .invalidValue(let error):
            return "refused before sending: \(error)"
        case .incompatibleDevice(let error):
            return error.description
        case .busStopped:
            return "the bus was stopped before the request ran"
        case .io(let code, let message):
            return "I/O error \(code): \(message)"
        }
    }
}
