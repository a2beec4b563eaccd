import CModbus
import FirmwareProtocol
import Glibc

/// One libmodbus context and the link under it.
///
/// Threading rule: a `ModbusConnection` belongs to exactly one thread (its bus thread)
/// for its whole life; it is created, used and freed there. libmodbus contexts are not
/// thread-safe, which is why this type is not `Sendable`.
final class ModbusConnection {
    private var context: OpaquePointer?
    let endpoint: BusEndpoint
    private(set) var connectedPath: String?

    init(endpoint: BusEndpoint) {
        self.endpoint = endpoint
    }

    deinit {
        close()
    }

    var isConnected: Bool { context != nil }

    /// Opens the link. A USB port named by identity is looked up again on every call,
    /// so a replugged adapter is found under its new device name.
    func connect() throws(BusError) {
        close()
        let created: OpaquePointer?
        switch endpoint.transport {
        case let .rtu(selector, baud, parity, dataBits, stopBits):
            let path: String
            do {
                path = try SerialPortCatalog.resolve(selector)
            } catch {
                throw BusError(.linkDown(error.description), unitId: 0, device: "bus", operation: "open \(selector)")
            }
            let parityChar: CChar = switch parity {
            case .none: CChar(UInt8(ascii: "N"))
            case .even: CChar(UInt8(ascii: "E"))
            case .odd: CChar(UInt8(ascii: "O"))
            }
            created = modbus_new_rtu(path, Int32(baud), parityChar, Int32(dataBits), Int32(stopBits))
            connectedPath = path
        case let .tcp(host, port):
            created = modbus_new_tcp(host, Int32(port))
            connectedPath = "\(host):\(port)"
        }
        guard let ctx = created else {
            throw BusError(.io(code: errno, message: String(cString: modbus_strerror(errno))),
                           unitId: 0, device: "bus", operation: "create context for \(endpoint)")
        }
        let timeoutUs = UInt32(max(1, endpoint.responseTimeoutMilliseconds)) * 1000
        modbus_set_response_timeout(ctx, timeoutUs / 1_000_000, timeoutUs % 1_000_000)
        let byteUs = UInt32(max(1, endpoint.byteTimeoutMilliseconds)) * 1000
        modbus_set_byte_timeout(ctx, byteUs / 1_000_000, byteUs % 1_000_000)
        // Recovery is ours (bounded retries and reconnects in the bus loop); libmodbus's
        // own link recovery can loop for seconds.
        modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE)
        if modbus_connect(ctx) != 0 {
            let code = errno
            modbus_free(ctx)
            throw BusError(.linkDown("cannot open \(connectedPath ?? "?"): \(String(cString: modbus_strerror(code)))"),
                           unitId: 0, device: "bus", operation: "connect \(endpoint)")
        }
        if case .rtu = endpoint.transport {
            // A pty or a plain UART refuses RS-485 mode with ENOTTY: that means the
            // adapter handles direction itself, so there is nothing to set.
            _ = modbus_rtu_set_serial_mode(ctx, MODBUS_RTU_RS485)
        }
        context = ctx
        // Drop anything a previous session left in the line.
        modbus_flush(ctx)
    }

    func close() {
        if let ctx = context {
            modbus_close(ctx)
            modbus_free(ctx)
            context = nil
        }
    }

    func flush() {
        if let ctx = context { modbus_flush(ctx) }
    }

    /// Runs one transaction. `buffer` receives read results and must hold `count` words.
    func execute(unit: UInt8, operation: BusOperation, into buffer: inout [UInt16]) -> Int32 {
        guard let ctx = context else {
            errno = EBADF
            return -1
        }
        modbus_set_slave(ctx, Int32(unit))
        switch operation {
        case let .readInput(address, count):
            return buffer.withUnsafeMutableBufferPointer {
                modbus_read_input_registers(ctx, Int32(address), Int32(count), $0.baseAddress)
            }
        case let .readHolding(address, count):
            return buffer.withUnsafeMutableBufferPointer {
                modbus_read_registers(ctx, Int32(address), Int32(count), $0.baseAddress)
            }
        case let .writeSingle(address, value):
            return modbus_write_register(ctx, Int32(address), value)
        case let .writeMultiple(address, values):
            return values.withUnsafeBufferPointer {
                modbus_write_registers(ctx, Int32(address), Int32(values.count), $0.baseAddress)
            }
        }
    }

    /// Maps the errno left by a failed libmodbus call to a typed error kind.
    func classify(errno code: Int32) -> BusError.Kind {
        switch code {
        case ETIMEDOUT:
            return .timeout(milliseconds: endpoint.responseTimeoutMilliseconds)
        case CMODBUS_EMBBADCRC:
            return .crcMismatch
        case CMODBUS_EMBXILFUN...CMODBUS_EMBXGTAR:
            return .exception(code: UInt8(code - CMODBUS_ENOBASE))
        case CMODBUS_EMBBADSLAVE:
            return .wrongUnitReplied
        case CMODBUS_EMBBADDATA, CMODBUS_EMBMDATA, CMODBUS_EMBBADEXC, CMODBUS_EMBUNKEXC:
            return .malformedReply(String(cString: modbus_strerror(code)))
        case EBADF, EIO, ECONNRESET, EPIPE, ENXIO, ENODEV, ECONNREFUSED, ENOTCONN:
            return .linkDown(String(cString: modbus_strerror(code)))
        default:
            return .io(code: code, message: String(cString: modbus_strerror(code)))
        }
    }
}

/// One Modbus transaction.
public enum BusOperation: Sendable, Equatable, CustomStringConvertible {
    case readInput(address: UInt16, count: Int)
    case readHolding(address: UInt16, count: Int)
    case writeSingle(address: UInt16, value: UInt16)
    case writeMultiple(address: UInt16, values: [UInt16])

    public var table: RegisterTable {
        switch self {
        case .readInput: return .input
        case .readHolding, .writeSingle, .writeMultiple: return .holding
        }
    }

    public var address: UInt16 {
        switch self {
        case .readInput(let a, _), .readHolding(let a, _), .writeSingle(let a, _), .writeMultiple(let a, _): return a
        }
    }

    public var registerCount: Int {
        switch self {
        case .readInput(_, let n), .readHolding(_, let n): return n
        case .writeSingle: return 1
        case .writeMultiple(_, let values): return values.count
        }
    }

    public var isWrite: Bool {
        switch self {
        case .writeSingle, .writeMultiple: return true
        default: return false
        }
    }

    public var description: String {
        let last = Int(address) + registerCount - 1
        let range = registerCount == 1 ? "\(address)" : "\(address)-\(last)"
        switch self {
        case .readInput: return "read input registers \(range)"
        case .readHolding: return "read holding registers \(range)"
        case .writeSingle(_, let v): return "write holding register \(range) = \(v)"
        case .writeMultiple: return "write holding registers \(range)"
        }
    }
}
