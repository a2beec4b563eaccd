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
            modbus_set_indication_timeout(ctx, 0, 50_000)
            while !stopFlag.isSet {
                let n = query.withUnsafeMutableBufferPointer { modbus_receive(ctx, $0.baseAddress) }
                if n < 0 {
                    if errno == ETIMEDOUT { continue }
                    break
                }
                if n == 0 { continue }
                answer(ctx: ctx, mapping: mapping, query: &query, length: Int(n))
            }
            close(client)
        }
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
        let address = Int(query[header + 1]) << 8 | Int(query[header + 2])
        let count = Int(query[header + 3]) << 8 | Int(query[header + 4])
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
