import CModbus
import FirmwareProtocol
import Foundation
import Glibc

/// The firmware's Modbus TCP side (as behind an RS-485 gateway), on a loopback port.
/// One client at a time, answered through libmodbus; the unit ID in the MBAP header
/// picks the device.
public final class TCPServer: @unchecked Sendable {
    public let model: FirmwareModel
    public let faults: FaultInjector
    public let host: String
    public private(set) var port: Int
    private var listenSocket: Int32 = -1
    private let stopFlag = StopRequest()
    private let exited = DispatchSemaphore(value: 0)
    private var started = false

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(model: FirmwareModel, faults: FaultInjector, host: String = "127.0.0.1", port: Int = 0) {
        self.model = model
        self.faults = faults
        self.host = host
        self.port = port
    }

    /// Binds (port 0 picks a free port; read `port` afterwards) and starts serving.
    public func start() throws(Failure) {
        let (s, actualPort) = try TCPServer.listenSocket(host: host, port: port)
        port = actualPort
        listenSocket = s
        started = true
        let thread = Thread { [self] in self.serve() }
        thread.name = "sim-tcp-server"
        thread.start()
    }

    public func stop() {
        guard started else { return }
        stopFlag.set()
        exited.wait()
        close(listenSocket)
        started = false
    }

    /// A listening TCP socket on `host:port` (port 0 picks a free one) and its actual port.
    static func listenSocket(host: String, port: Int) throws(Failure) -> (Int32, Int) {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(s)
            throw Failure(description: "'\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(s, 4) == 0 else {
            let message = String(cString: strerror(errno))
            close(s)
            throw Failure(description: "cannot listen on \(host):\(port): \(message)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &length) }
        }
        return (s, Int(UInt16(bigEndian: actual.sin_port)))
    }

    private func serve() {
        defer { exited.signal() }
        guard let ctx = modbus_new_tcp(host, Int32(port)) else { return }
        defer { modbus_free(ctx) }
        guard let mapping = modbus_mapping_new_start_address(0, 0, 0, 0, 0, 64, 0, 64) else { return }
        defer { modbus_mapping_free(mapping) }
        var query = [UInt8](repeating: 0, count: 260)
        while !stopFlag.isSet {
            var pfd = pollfd(fd: listenSocket, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let client = accept(listenSocket, nil, nil)
            guard client >= 0 else { continue }
            modbus_set_socket(ctx, client)
            // Frames are cut by the MBAP header's length field, not by libmodbus's guess
            // from the function code, which misreads a function it does not know and then
            // takes the rest of that frame as the next one.
            while !stopFlag.isSet {
                guard let header = readExactly(client, 7) else { break }
                let length = Int(header[4]) << 8 | Int(header[5])
                // The length counts the unit ID and the PDU: 2 to 254 bytes (Modbus TCP).
                guard (2...254).contains(length), header[2] == 0, header[3] == 0,
                      let rest = readExactly(client, length - 1) else { break }
                let frame = header + rest
                for (i, byte) in frame.enumerated() where i < query.count { query[i] = byte }
                answer(ctx: ctx, mapping: mapping, query: &query, length: frame.count)
            }
            close(client)
        }
    }

    /// Reads exactly `count` bytes from `socket`, waiting in 50 ms polls so a stop request
    /// is seen; nil when the peer closes, an error occurs or the server stops.
    private func readExactly(_ socket: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            if stopFlag.isSet { return nil }
            var pfd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 50)
            if ready < 0 { return nil }
            if ready == 0 { continue }
            let n = bytes.withUnsafeMutableBufferPointer { read(socket, $0.baseAddress! + got, count - got) }
            if n <= 0 { return nil }
            got += n
        }
        return bytes
    }

    private func answer(ctx: OpaquePointer, mapping: UnsafeMutablePointer<modbus_mapping_t>, query: inout [UInt8], length: Int) {
        let header = 7
        let unit = query[6]
        guard RegisterMap.device(unitId: unit) != nil else {
            // A gateway reports an absent unit with exception 0x0B (target failed to respond).
            _ = modbus_reply_exception(ctx, &query, 0x0B)
            return
        }
        let function = query[header]
        let fault = faults.take(unit: unit, functionCode: function)
        if fault == .noReply { return }
        if case .lateReply(let ms) = fault { usleep(UInt32(ms) * 1000) }
        // Short PDUs (an unknown function with fewer bytes) read as zeros, never past the frame.
        func byte(_ i: Int) -> Int { i < length ? Int(query[i]) : 0 }
        let address = byte(header + 1) << 8 | byte(header + 2)
        let count = byte(header + 3) << 8 | byte(header + 4)
        var exception: ModbusException?
        switch function {
        case FunctionCode.readHoldingRegisters.rawValue, FunctionCode.readInputRegisters.rawValue:
            let table: RegisterTable = function == FunctionCode.readInputRegisters.rawValue ? .input : .holding
            switch model.read(unit: unit, table: table, start: address, count: count) {
            case .success(let values):
                let registers = table == .input ? mapping.pointee.tab_input_registers : mapping.pointee.tab_registers
                for (i, v) in values.enumerated() { registers?[address + i] = v }
            case .failure(let e):
                exception = e
            }
        case FunctionCode.writeSingleRegister.rawValue:
            exception = model.write(unit: unit, start: address, values: [UInt16(count)])
        case FunctionCode.writeMultipleRegisters.rawValue:
            // F3.2: 1-123 registers, a byte count of twice that, and the bytes all there.
            let byteCount = length > header + 5 ? Int(query[header + 5]) : -1
            guard (1...123).contains(count), byteCount == 2 * count, header + 6 + byteCount <= length else {
                exception = .illegalDataValue
                break
            }
            let values = (0..<count).map { UInt16(query[header + 6 + 2 * $0]) << 8 | UInt16(query[header + 7 + 2 * $0]) }
            exception = model.write(unit: unit, start: address, values: values)
        default:
            exception = .illegalFunction
        }
        if case .exception(let code) = fault { exception = ModbusException(rawValue: code) ?? .serverDeviceFailure }
        if let exception {
            _ = modbus_reply_exception(ctx, &query, UInt32(exception.rawValue))
        } else {
            _ = modbus_reply(ctx, &query, Int32(length), mapping)
        }
    }
}
