import FirmwareProtocol
import RobotIO

/// How much of a Modbus RTU line the controller's schedule takes (protocol review P13,
/// issue 16): every status poll at its period and the watchdog refresh, each a round trip
/// of request and reply characters, the 3.5-character silence after which a unit knows
/// the request has ended (1.75 ms above 19 200 baud), and the unit's turnaround (how long
/// its firmware then takes to start the reply; the protocol allows up to 10 ms). This is
/// the simulator's line model (`LineTiming`) and the protocol review's figure: 93 % for
/// the default schedule at 115 200 baud and 1 ms.
///
/// The master sends its next request as soon as a reply is in (libmodbus does not wait
/// a second silence), so the figure is for a line driven back to back. Set-point writes
/// come only with commands (a few a second at most) and are left out; at or below
/// `limit` there is room for them and for retries. Modbus TCP has no line to fill: no
/// budget.
public struct LineBudget: Sendable, Equatable, CustomStringConvertible {
    public struct Exchange: Sendable, Equatable {
        public var what: String
        public var periodMilliseconds: Int
        public var requestCharacters: Int
        public var replyCharacters: Int
        public var microseconds: Double
        /// The share of the line it takes, 0-1.
        public var share: Double
    }

    /// The share of the line the schedule may take: room for set-points and retries.
    public static let limit = 0.70

    public let baud: Int
    public let bitsPerCharacter: Int
    public let turnaroundMicroseconds: Int
    public let exchanges: [Exchange]
    public var occupancy: Double { exchanges.map(\.share).reduce(0, +) }

    /// Nil for Modbus TCP.
    public init?(endpoint: BusEndpoint, configuration c: ControlConfiguration, turnaroundMicroseconds: Int) {
        guard case let .rtu(_, baud, parity, dataBits, stopBits) = endpoint.transport else { return nil }
        self.baud = baud
        bitsPerCharacter = 1 + dataBits + (parity == .none ? 0 : 1) + stopBits
        self.turnaroundMicroseconds = turnaroundMicroseconds
        let characterMicroseconds = Double(bitsPerCharacter) * 1e6 / Double(baud)
        let silence = baud > 19_200 ? 1750.0 : 3.5 * characterMicroseconds
        func exchange(_ what: String, every period: Int, request: Int, reply: Int) -> Exchange {
            let time = Double(request + reply) * characterMicroseconds + silence + Double(turnaroundMicroseconds)
            return Exchange(what: what, periodMilliseconds: period, requestCharacters: request, replyCharacters: reply,
                            microseconds: time, share: time / (Double(period) * 1000))
        }
        // A read (function 3 or 4): 8 request bytes; the reply has address, function, byte
        // count, the registers and the CRC. A write of n registers (16): 9 + 2n request
        // bytes and an 8-byte reply.
        func read(_ what: String, _ spec: BlockSpec, every period: Int) -> Exchange {
            exchange(what, every: period, request: 8, reply: 5 + 2 * spec.count)
        }
        exchanges = [
            read("safety status", SafetyStatus.spec, every: c.safetyPollMilliseconds),
            read("chassis status", ChassisStatus.spec, every: c.chassisPollMilliseconds),
            read("lift status", LiftStatus.spec, every: c.liftPollMilliseconds),
            read("detector status", DetectorStatus.spec, every: c.detectorPollMilliseconds),
            exchange("watchdog refresh", every: c.watchdogRefreshMilliseconds, request: 9 + 2 * SafetyCommand.spec.count, reply: 8),
        ]
    }

    /// Why the schedule does not fit, with the numbers and a way out; nil when it does.
    public var problem: String? {
        guard occupancy > Self.limit else { return nil }
        return "the poll schedule takes \(Self.percent(occupancy)) of the \(baud)-baud line at \(turnaroundMicroseconds) µs turnaround "
            + "(at most \(Self.percent(Self.limit)) leaves room for set-points and retries): \(breakdown); poll less often "
            + "(polls: in robotd.yaml), raise the baud rate, or shorten the firmware's turnaround"
    }

    public var breakdown: String {
        exchanges.map { "\($0.what) \(String(format: "%.2f", $0.microseconds / 1000)) ms every \($0.periodMilliseconds) ms = \(Self.percent($0.share))" }
            .joined(separator: ", ")
    }

    public var description: String {
        "\(baud) baud, \(bitsPerCharacter) bits a character, \(turnaroundMicroseconds) µs turnaround: \(Self.percent(occupancy)) of the line (\(breakdown))"
    }

    public static func percent(_ share: Double) -> String { "\(Int((share * 100).rounded())) %" }
}
