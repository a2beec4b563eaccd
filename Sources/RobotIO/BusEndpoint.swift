/// Where a bus is and how to talk to it.
public struct BusEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        /// Modbus RTU on a serial line found by `port`.
        case rtu(port: PortSelector, baud: Int, parity: Parity, dataBits: Int, stopBits: Int)
        /// Modbus TCP, for example through an RS-485 gateway.
        case tcp(host: String, port: Int)
    }

    public enum Parity: String, Sendable, Equatable {
        case none = "N", even = "E", odd = "O"
    }

    public var transport: Transport
    /// How long to wait for the first byte of a reply.
    public var responseTimeoutMilliseconds: Int
    /// How long to wait between bytes of one reply before calling it complete or broken.
    public var byteTimeoutMilliseconds: Int

    public init(transport: Transport, responseTimeoutMilliseconds: Int = 100, byteTimeoutMilliseconds: Int = 5) {
        self.transport = transport
        self.responseTimeoutMilliseconds = responseTimeoutMilliseconds
        self.byteTimeoutMilliseconds = byteTimeoutMilliseconds
    }

    /// RTU at the protocol's default framing, 115200 8N1.
    public static func rtu(_ port: PortSelector, baud: Int = 115_200, responseTimeoutMilliseconds: Int = 100) -> BusEndpoint {
        BusEndpoint(transport: .rtu(port: port, baud: baud, parity: .none, dataBits: 8, stopBits: 1),
                    responseTimeoutMilliseconds: responseTimeoutMilliseconds)
    }

    public static func tcp(host: String, port: Int = 502, responseTimeoutMilliseconds: Int = 100) -> BusEndpoint {
        BusEndpoint(transport: .tcp(host: host, port: port), responseTimeoutMilliseconds: responseTimeoutMilliseconds)
    }

    public var description: String {
        switch transport {
        case let .rtu(port, baud, parity, dataBits, stopBits):
            return "rtu:\(port) \(baud) \(dataBits)\(parity.rawValue)\(stopBits)"
        case let .tcp(host, port):
            return "tcp:\(host):\(port)"
        }
    }
}
