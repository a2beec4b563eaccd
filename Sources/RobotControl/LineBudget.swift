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
            // Polled only on a chassis that has the pair; counted whenever configured, so a
            // schedule that fits without the sensors still fits with them.
            + (c.rangePollMilliseconds > 0 ? [read("chassis range pair", ChassisRange.spec, every: c.rangePollMilliseconds)] : [])
            // Last, so the indices `fitted` stretches stay those above; it is never stretched.
            + (c.batteryPollMilliseconds > 0 ? [read("battery current", SafetyBattery.spec, every: c.batteryPollMilliseconds)] : [])
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

    /// The longest period each poll may be stretched to when a schedule is fitted to the
    /// line, milliseconds. The firmware stops on its own for the e-stop chain, the
    /// watchdog, bumpers and limit switches (protocol §5-§7); the polls are how the
    /// controller learns of it, so the safety status stays the fastest.
    /// The range pair (G9) is read only for registration and the stand-off: the slower
    /// its poll, the slower the registration pass walks (`ContainerRegistrar`).
    public static let ceilings = (safety: 200, chassis: 200, lift: 400, detector: 1000, range: 800)

    /// `c` with every poll at least at its ceiling and the refresh at its longest (half
    /// the watchdog timeout, at most 250 ms): the slowest schedule `fitted` may reach.
    public static func longest(_ c: ControlConfiguration) -> ControlConfiguration {
        var c = c
        c.safetyPollMilliseconds = max(c.safetyPollMilliseconds, ceilings.safety)
        c.chassisPollMilliseconds = max(c.chassisPollMilliseconds, ceilings.chassis)
        c.liftPollMilliseconds = max(c.liftPollMilliseconds, ceilings.lift)
        c.detectorPollMilliseconds = max(c.detectorPollMilliseconds, ceilings.detector)
        if c.rangePollMilliseconds > 0 { c.rangePollMilliseconds = max(c.rangePollMilliseconds, ceilings.range) }
        c.watchdogRefreshMilliseconds = max(c.watchdogRefreshMilliseconds, refreshCeiling(c))
        return c
    }

    static func refreshCeiling(_ c: ControlConfiguration) -> Int { min(250, Int(c.watchdogTimeoutMilliseconds) / 2) }

    /// The rungs `fitted` climbs: each raises every poll's ceiling, so no poll is
    /// stretched far while another is still at its default.
    static let rungs: [(safety: Int, chassis: Int, lift: Int, detector: Int, range: Int)] = [
        (20, 40, 40, 100, 200), (40, 80, 80, 200, 400), (80, 160, 160, 400, 800),
        (ceilings.safety, ceilings.chassis, ceilings.lift, ceilings.detector, ceilings.range),
    ]

    /// `configuration` with its polls stretched until the schedule takes at most `limit`
    /// of the line; unchanged if it fits already or the bus is Modbus TCP; nil if even the
    /// ceilings do not fit. Rung by rung (`rungs`), each step doubles the period of the
    /// poll with the largest share that is still below the rung's ceiling; the watchdog
    /// refresh (at most half the watchdog timeout) only on the last rung.
    public static func fitted(endpoint: BusEndpoint, configuration: ControlConfiguration,
                              turnaroundMicroseconds: Int) -> ControlConfiguration? {
        var c = configuration
        for (rung, ceiling) in rungs.enumerated() {
            let last = rung == rungs.count - 1
            for _ in 0..<40 {
                guard let budget = LineBudget(endpoint: endpoint, configuration: c, turnaroundMicroseconds: turnaroundMicroseconds) else { return c }
                if budget.occupancy <= limit { return c }
                let refreshCeiling = last ? Self.refreshCeiling(c) : c.watchdogRefreshMilliseconds
                // (index in `exchanges`, current period, ceiling on this rung)
                let candidates: [(Int, Int, Int)] = [
                    (0, c.safetyPollMilliseconds, ceiling.safety), (1, c.chassisPollMilliseconds, ceiling.chassis),
                    (2, c.liftPollMilliseconds, ceiling.lift), (3, c.detectorPollMilliseconds, ceiling.detector),
                    (4, c.watchdogRefreshMilliseconds, refreshCeiling),
                ].filter { $0.1 < $0.2 } + (c.rangePollMilliseconds > 0 && c.rangePollMilliseconds < ceiling.range ? [(5, c.rangePollMilliseconds, ceiling.range)] : [])
                guard let index = candidates.max(by: { budget.exchanges[$0.0].share < budget.exchanges[$1.0].share })?.0 else { break }
                switch index {
                case 0: c.safetyPollMilliseconds = min(ceiling.safety, c.safetyPollMilliseconds * 2)
                case 1: c.chassisPollMilliseconds = min(ceiling.chassis, c.chassisPollMilliseconds * 2)
                case 2: c.liftPollMilliseconds = min(ceiling.lift, c.liftPollMilliseconds * 2)
                case 3: c.detectorPollMilliseconds = min(ceiling.detector, c.detectorPollMilliseconds * 2)
                case 5: c.rangePollMilliseconds = min(ceiling.range, c.rangePollMilliseconds * 2)
                default: c.watchdogRefreshMilliseconds = min(refreshCeiling, c.watchdogRefreshMilliseconds * 2)
                }
            }
        }
        guard let budget = LineBudget(endpoint: endpoint, configuration: c, turnaroundMicroseconds: turnaroundMicroseconds) else { return c }
        return budget.occupancy <= limit ? c : nil
    }

    /// The poll periods of a configuration, for logs and messages.
    public static func schedule(_ c: ControlConfiguration) -> String {
        "safety \(c.safetyPollMilliseconds) ms, chassis \(c.chassisPollMilliseconds) ms, lift \(c.liftPollMilliseconds) ms, "
            + "detector \(c.detectorPollMilliseconds) ms, "
            + (c.rangePollMilliseconds > 0 ? "range pair \(c.rangePollMilliseconds) ms, " : "")
            + (c.batteryPollMilliseconds > 0 ? "battery current \(c.batteryPollMilliseconds) ms, " : "")
            + "watchdog refresh \(c.watchdogRefreshMilliseconds) ms"
    }
}
