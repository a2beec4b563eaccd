import CModbus
import FirmwareProtocol
import Foundation
import Synchronization
import Glibc

/// The firmware's Modbus RTU side on a pty master.
///
/// Frames are cut from the byte stream here (several unit IDs share the line, and
/// libmodbus's own receive path answers only one), then answered through libmodbus
/// (`modbus_reply`, `modbus_reply_exception`) on the same fd. Faults that need
/// broken bytes on the wire are written raw.
public final class RTUServer: @unchecked Sendable {
    public let model: FirmwareModel
    public let faults: FaultInjector
    private let fd: Int32
    private let timingLock = NSLock()
    private var timing: LineTiming
    private let stopFlag = StopRequest()
    private let exited = DispatchSemaphore(value: 0)
    private var started = false

    /// Counters an operator can read.
    public struct Counters: Sendable, Equatable {
        public var requests = 0
        public var replies = 0
        public var crcErrors = 0
        public var discardedBytes = 0
        public var ignoredUnits = 0
    }
    private var countersValue = Counters()
    private let countersLock = NSLock()

    public init(fd: Int32, model: FirmwareModel, faults: FaultInjector, timing: LineTiming) {
        self.fd = fd
        self.model = model
        self.faults = faults
        self.timing = timing
    }

    public var lineTiming: LineTiming {
        get { timingLock.lock(); defer { timingLock.unlock() }; return timing }
        set { timingLock.lock(); timing = newValue; timingLock.unlock() }
    }

    public var counters: Counters {
        countersLock.lock()
        defer { countersLock.unlock() }
        return countersValue
    }

    public func start() {
        guard !started else { return }
        started = true
        let thread = Thread { [self] in self.serve() }
        thread.name = "sim-rtu-server"
        thread.start()
    }

    public func stop() {
        guard started else { return }
        stopFlag.set()
        exited.wait()
        started = false
    }

    private func bump(_ update: (inout Counters) -> Void) {
        countersLock.lock()
        update(&countersValue)
        countersLock.unlock()
    }

    private func serve() {
        defer { exited.signal() }
        // The libmodbus context only formats and sends replies; its fd is the pty master.
        guard let ctx = modbus_new_rtu("/dev/null", 115_200, CChar(UInt8(ascii: "N")), 8, 1) else { return }
        defer { modbus_free(ctx) }
        modbus_set_socket(ctx, fd)
        guard let m = modbus_mapping_new_start_address(0, 0, 0, 0, 0, 64, 0, 64) else { return }
        defer { modbus_mapping_free(m) }
        var buffer: [UInt8] = []
        var lastByteAt = DispatchTime.now().uptimeNanoseconds
        var chunk = [UInt8](repeating: 0, count: 512)
        while !stopFlag.isSet {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 2)
            let now = DispatchTime.now().uptimeNanoseconds
            let silent = now - lastByteAt > Self.silenceNanoseconds
            if ready > 0 {
                let n = read(fd, &chunk, chunk.count)
                if n > 0 {
                    // A gap before these bytes ends whatever came before them.
                    if silent && !buffer.isEmpty {
                        extractFrames(&buffer, frameEnded: true, ctx: ctx, mapping: m)
                    }
                    buffer += chunk[0..<n]
                    lastByteAt = now
                    extractFrames(&buffer, frameEnded: false, ctx: ctx, mapping: m)
                } else if n < 0 && errno != EAGAIN && errno != EINTR {
                    usleep(10_000)
                }
            } else if silent && !buffer.isEmpty {
                extractFrames(&buffer, frameEnded: true, ctx: ctx, mapping: m)
            }
        }
    }

    /// Silence that ends a frame. Longer than 3.5 characters at any baud we use, and
    /// long enough that a pty writer's single write is never split by scheduling.
    static let silenceNanoseconds: UInt64 = 4_000_000

    /// Cuts complete requests off the front of `buffer`. When the line has gone quiet
    /// (`frameEnded`), what remains is one frame: an intact one with a function we do
    /// not implement is answered with exception 1, anything else is dropped.
    private func extractFrames(_ buffer: inout [UInt8], frameEnded: Bool, ctx: OpaquePointer,
                               mapping: UnsafeMutablePointer<modbus_mapping_t>) {
        while !buffer.isEmpty {
            if let length = ModbusRTUFrame.expectedRequestLength(prefix: buffer), buffer.count >= length {
                let frame = Array(buffer[0..<length])
                if ModbusRTUFrame.hasValidCRC(frame) {
                    buffer.removeFirst(length)
                    handle(frame: frame, ctx: ctx, mapping: mapping)
                    continue
                }
                // A slave never answers a frame with a bad CRC; resynchronise on silence.
                bump { $0.crcErrors += 1; $0.discardedBytes += buffer.count }
                buffer.removeAll()
                return
            }
            guard frameEnded else { return }
            if buffer.count >= 4 && ModbusRTUFrame.hasValidCRC(buffer) {
                handle(frame: buffer, ctx: ctx, mapping: mapping)
            } else {
                bump { $0.discardedBytes += buffer.count }
            }
            buffer.removeAll()
        }
    }

    private func handle(frame: [UInt8], ctx: OpaquePointer, mapping: UnsafeMutablePointer<modbus_mapping_t>) {
        bump { $0.requests += 1 }
        let unit = frame[0]
        guard RegisterMap.device(unitId: unit) != nil else {
            // No such unit on the line: silence, as on a real RS-485 bus.
            bump { $0.ignoredUnits += 1 }
            return
        }
        let function = frame[1]
        let fault = faults.take(unit: unit, functionCode: function)
        if fault == .noReply { return }
        let requestStart = DispatchTime.now().uptimeNanoseconds

        // Work out the reply (or exception) from the model.
        let address = Int(frame[2]) << 8 | Int(frame[3])
        var exception: ModbusException?
        var readValues: [UInt16] = []
        var table: RegisterTable = .holding
        switch function {
        case FunctionCode.readHoldingRegisters.rawValue, FunctionCode.readInputRegisters.rawValue:
            table = function == FunctionCode.readInputRegisters.rawValue ? .input : .holding
            let count = Int(frame[4]) << 8 | Int(frame[5])
            switch model.read(unit: unit, table: table, start: address, count: count) {
            case .success(let values): readValues = values
            case .failure(let e): exception = e
            }
        case FunctionCode.writeSingleRegister.rawValue:
            let value = UInt16(frame[4]) << 8 | UInt16(frame[5])
            exception = model.write(unit: unit, start: address, values: [value])
        case FunctionCode.writeMultipleRegisters.rawValue:
            let count = Int(frame[4]) << 8 | Int(frame[5])
            if Int(frame[6]) != 2 * count || frame.count != 9 + 2 * count {
                exception = .illegalDataValue
            } else {
                let values = (0..<count).map { UInt16(frame[7 + 2 * $0]) << 8 | UInt16(frame[8 + 2 * $0]) }
                exception = model.write(unit: unit, start: address, values: values)
            }
        default:
            exception = .illegalFunction
        }
        if case .exception(let code) = fault { exception = ModbusException(rawValue: code) ?? .serverDeviceFailure }

        let replyLength = exception == nil ? ModbusRTUFrame.expectedResponseLength(request: frame) : 5
        let timing = lineTiming
        var delayMicroseconds = timing.enabled
            ? timing.roundTripMicroseconds(requestBytes: frame.count, responseBytes: replyLength) : 0
        if case .lateReply(let ms) = fault { delayMicroseconds += Double(ms) * 1000 }
        if delayMicroseconds > 0 {
            let due = requestStart + UInt64(delayMicroseconds * 1000)
            let now = DispatchTime.now().uptimeNanoseconds
            if due > now { usleep(UInt32((due - now) / 1000)) }
        }

        switch fault {
        case .crcError?, .junkBytes?, .splitFrame?:
            var reply: [UInt8]
            if let exception {
                reply = ModbusRTUFrame.exceptionResponse(unit: unit, function: function, exception: exception)
            } else if function == FunctionCode.readHoldingRegisters.rawValue || function == FunctionCode.readInputRegisters.rawValue {
                reply = ModbusRTUFrame.readResponse(unit: unit, function: FunctionCode(rawValue: function) ?? .readInputRegisters,
                                                    values: readValues)
            } else {
                reply = Array(frame[0..<6])
                reply = ModbusRTUFrame.sealed(reply)
            }
            switch fault {
            case .crcError?:
                reply[reply.count - 1] ^= 0x5A
                writeAll(reply)
            case .junkBytes(let n)?:
                writeAll(faults.randomBytes(n))
            case .splitFrame(let gap)?:
                let half = reply.count / 2
                writeAll(Array(reply[0..<half]))
                usleep(UInt32(max(0, gap)) * 1000)
                writeAll(Array(reply[half...]))
            default:
                break
            }
            bump { $0.replies += 1 }
            return
        default:
            break
        }

        // Normal path: libmodbus formats the reply from the unit's mapping.
        var request = frame
        modbus_set_slave(ctx, Int32(unit))
        if let exception {
            _ = modbus_reply_exception(ctx, &request, UInt32(exception.rawValue))
        } else {
            if !readValues.isEmpty {
                let registers = table == .input ? mapping.pointee.tab_input_registers : mapping.pointee.tab_registers
                for (i, v) in readValues.enumerated() { registers?[address + i] = v }
            }
            _ = modbus_reply(ctx, &request, Int32(request.count), mapping)
        }
        bump { $0.replies += 1 }
    }

    private func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            offset += n
        }
    }
}

/// A flag set once from another thread (stop requests): an atomic, not a lock.
final class StopRequest: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
