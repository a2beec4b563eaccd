import CommandServer
import Foundation
import Inspection
import RobotControl
import RobotIO
import StrictYAML

/// robotd's one configuration file: the robot, its bus (by path or USB identity),
/// the loop rate, limits and safety timings. Every key is optional; the defaults are
/// documented in `docs/robotd.yaml`.
public struct DaemonConfiguration: Sendable {
    public var robotId = "RIR-01"
    public var endpoint: BusEndpoint = .rtu(.path("/tmp/robot-sim/bus0"))
    public var maxRetries = 1
    /// How long the robot's units take to start a reply (the protocol allows up to 10 ms):
    /// what the line budget is computed with (`bus.turnaroundMicroseconds`).
    public var lineTurnaroundMicroseconds = 1000
    public var control = ControlConfiguration()
    /// Set when robotd stretched the default polls to fit the line (logged at start).
    public var pollsFitted: String?
    /// The officers' API and phone UI.
    public var server = ServerConfiguration()
    /// The SQLite store: scans, readings, users, audit.
    public var storePath = "scans.sqlite"

    public init() {}

    public static func load(path: String) throws(ConfigurationFileError) -> DaemonConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationFileError(file: path, line: nil, column: nil, field: "",
                                         message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(ConfigurationFileError) -> DaemonConfiguration {
        let root = try YAMLFields.parse(text, file: file)
        try root.allowOnly(["robot", "bus", "loop", "limits", "safety", "polls", "server", "store", "probe", "battery", "startPose", "ranging", "people"])
        var config = DaemonConfiguration()
        config.robotId = try root.string("robot", default: config.robotId)
        var c = config.control

        if let bus = try root.mapping("bus") {
            try bus.allowOnly(["port", "tcp", "baud", "responseTimeoutMilliseconds", "maxRetries", "turnaroundMicroseconds"])
            config.lineTurnaroundMicroseconds = try bus.integer("turnaroundMicroseconds", default: 1000, in: 0...100_000)
            let timeout = try bus.integer("responseTimeoutMilliseconds", default: 100, in: 5...10_000)
            let baud = try bus.integer("baud", default: 115_200, in: 1200...4_000_000)
            config.maxRetries = try bus.integer("maxRetries", default: 1, in: 0...5)
            switch (bus.has("port"), bus.has("tcp")) {
            case (true, false):
                let text = try bus.string("port")
                do {
                    config.endpoint = .rtu(try PortSelector(parsing: text), baud: baud, responseTimeoutMilliseconds: timeout)
                } catch {
                    throw bus.error(error.reason, at: bus.value("port"), field: "bus.port")
                }
            case (false, true):
                let text = try bus.string("tcp")
                let parts = text.split(separator: ":")
                guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
                    throw bus.error("'\(text)' is not HOST:PORT, e.g. 192.168.10.5:502", at: bus.value("tcp"), field: "bus.tcp")
                }
                config.endpoint = .tcp(host: String(parts[0]), port: port, responseTimeoutMilliseconds: timeout)
            case (true, true):
                throw bus.error("give either port or tcp, not both")
            case (false, false):
                config.endpoint = .rtu(.path("/tmp/robot-sim/bus0"), baud: baud, responseTimeoutMilliseconds: timeout)
            }
        }
        if let loop = try root.mapping("loop") {
            try loop.allowOnly(["rateHertz", "realtimePriority"])
            c.loopRateHertz = try loop.double("rateHertz", default: c.loopRateHertz, in: 1...1000)
            c.realtimePriority = Int32(try loop.integer("realtimePriority", default: Int(c.realtimePriority), in: 1...99))
        }
        if let limits = try root.mapping("limits") {
            try limits.allowOnly(["chassisMaxSpeedMetresPerSecond", "chassisAccelerationMetresPerSecond2", "turnRateDegreesPerSecond",
                                  "chassisToleranceMetres", "maximumWalkMetres", "liftMinimumMetres", "liftMaximumMetres",
                                  "liftMaxSpeedMetresPerSecond", "liftAccelerationMetresPerSecond2", "liftToleranceMetres",
                                  "liftParkMetres", "keepOutZones"])
            c.chassisMaxSpeedMetresPerSecond = try limits.double("chassisMaxSpeedMetresPerSecond", default: c.chassisMaxSpeedMetresPerSecond, in: 0.01...0.5)
            c.chassisAccelerationMetresPerSecond2 = try limits.double("chassisAccelerationMetresPerSecond2", default: c.chassisAccelerationMetresPerSecond2, in: 0.01...0.5)
            c.turnRateDegreesPerSecond = try limits.double("turnRateDegreesPerSecond", default: c.turnRateDegreesPerSecond, in: 1...90)
            c.chassisToleranceMetres = try limits.double("chassisToleranceMetres", default: c.chassisToleranceMetres, in: 0.001...0.1)
            c.maximumWalkMetres = try limits.double("maximumWalkMetres", default: c.maximumWalkMetres, in: 0.1...1000)
            c.liftMinimumMetres = try limits.double("liftMinimumMetres", default: c.liftMinimumMetres, in: 0.3...2.8)
            c.liftMaximumMetres = try limits.double("liftMaximumMetres", default: c.liftMaximumMetres, in: 0.3...2.8)
            c.liftMaxSpeedMetresPerSecond = try limits.double("liftMaxSpeedMetresPerSecond", default: c.liftMaxSpeedMetresPerSecond, in: 0.001...0.2)
            c.liftAccelerationMetresPerSecond2 = try limits.double("liftAccelerationMetresPerSecond2", default: c.liftAccelerationMetresPerSecond2, in: 0.001...0.4)
            c.liftToleranceMetres = try limits.double("liftToleranceMetres", default: c.liftToleranceMetres, in: 0.001...0.05)
            c.liftParkMetres = try limits.double("liftParkMetres", default: c.liftParkMetres, in: 0.3...2.8)
            for zone in try limits.list("keepOutZones") {
                try zone.allowOnly(["minX", "minY", "maxX", "maxY"])
                let z = KeepOutZone(minX: try zone.double("minX"), minY: try zone.double("minY"),
                                    maxX: try zone.double("maxX"), maxY: try zone.double("maxY"))
                guard z.minX < z.maxX, z.minY < z.maxY else { throw zone.error("minX must be below maxX and minY below maxY") }
                c.keepOutZones.append(z)
            }
        }
        if let safety = try root.mapping("safety") {
            try safety.allowOnly(["lostLinkMissedPolls", "watchdogTimeoutMilliseconds", "watchdogRefreshMilliseconds", "deadmanTimeoutSeconds",
                                  "scanCommsLossSeconds"])
            config.server.scanCommsLossSeconds = try safety.double("scanCommsLossSeconds", default: config.server.scanCommsLossSeconds, in: 0...600)
            c.lostLinkMissedPolls = try safety.integer("lostLinkMissedPolls", default: c.lostLinkMissedPolls, in: 1...100)
            c.watchdogTimeoutMilliseconds = UInt16(try safety.integer("watchdogTimeoutMilliseconds", default: Int(c.watchdogTimeoutMilliseconds), in: 50...10_000))
            c.watchdogRefreshMilliseconds = try safety.integer("watchdogRefreshMilliseconds", default: c.watchdogRefreshMilliseconds, in: 5...5000)
            c.deadmanTimeoutSeconds = try safety.double("deadmanTimeoutSeconds", default: c.deadmanTimeoutSeconds, in: 0.1...60)
        }
        if let polls = try root.mapping("polls") {
            try polls.allowOnly(["safetyMilliseconds", "chassisMilliseconds", "liftMilliseconds", "detectorMilliseconds", "rangeMilliseconds", "batteryMilliseconds"])
            c.safetyPollMilliseconds = try polls.integer("safetyMilliseconds", default: c.safetyPollMilliseconds, in: 1...1000)
            c.chassisPollMilliseconds = try polls.integer("chassisMilliseconds", default: c.chassisPollMilliseconds, in: 1...1000)
            c.liftPollMilliseconds = try polls.integer("liftMilliseconds", default: c.liftPollMilliseconds, in: 1...1000)
            c.detectorPollMilliseconds = try polls.integer("detectorMilliseconds", default: c.detectorPollMilliseconds, in: 1...1000)
            c.rangePollMilliseconds = try polls.integer("rangeMilliseconds", default: c.rangePollMilliseconds, in: 0...1000)
            c.batteryPollMilliseconds = try polls.integer("batteryMilliseconds", default: c.batteryPollMilliseconds, in: 0...10_000)
            if c.batteryPollMilliseconds != 0 && c.batteryPollMilliseconds < 200 {
                throw polls.error("batteryMilliseconds \(c.batteryPollMilliseconds) must be 0 (off) or 200 to 10000", field: "polls.batteryMilliseconds")
            }
        }
        config.storePath = try root.string("store", default: config.storePath)
        if let server = try root.mapping("server") {
            try server.allowOnly(["host", "port", "tlsCertificate", "tlsKey", "telemetryRateHertz", "tokenLifetimeSeconds",
                                  "loginMaxFailures", "loginLockoutSeconds", "profiles", "defaultProfile", "reports", "allowPlaintext",
                                  "maximumConnections", "requestDeadlineSeconds", "idleTimeoutSeconds", "maximumWebSockets",
                                  "maximumWebSocketsPerUser", "refusalLogIntervalSeconds", "minimumFreeDiskMegabytes"])
            var v = config.server
            v.host = try server.string("host", default: v.host)
            v.port = try server.integer("port", default: v.port, in: 0...65535)
            v.tlsCertificatePath = server.has("tlsCertificate") ? try server.string("tlsCertificate") : nil
            v.tlsKeyPath = server.has("tlsKey") ? try server.string("tlsKey") : nil
            v.telemetryRateHertz = try server.double("telemetryRateHertz", default: v.telemetryRateHertz, in: 0.5...50)
            v.tokenLifetimeSeconds = try server.double("tokenLifetimeSeconds", default: v.tokenLifetimeSeconds, in: 1...604_800)
            v.loginMaxFailures = try server.integer("loginMaxFailures", default: v.loginMaxFailures, in: 1...100)
            v.loginLockoutSeconds = try server.double("loginLockoutSeconds", default: v.loginLockoutSeconds, in: 1...86_400)
            v.profilesDirectory = try server.string("profiles", default: v.profilesDirectory)
            v.defaultProfile = try server.string("defaultProfile", default: v.defaultProfile)
            v.reportDirectory = try server.string("reports", default: v.reportDirectory)
            v.allowPlaintext = try server.bool("allowPlaintext", default: v.allowPlaintext)
            v.maximumConnections = try server.integer("maximumConnections", default: v.maximumConnections, in: 16...65_536)
            v.requestDeadlineSeconds = try server.double("requestDeadlineSeconds", default: v.requestDeadlineSeconds, in: 1...300)
            v.idleTimeoutSeconds = try server.double("idleTimeoutSeconds", default: v.idleTimeoutSeconds, in: 1...3600)
            v.maximumWebSockets = try server.integer("maximumWebSockets", default: v.maximumWebSockets, in: 1...4096)
            v.maximumWebSocketsPerUser = try server.integer("maximumWebSocketsPerUser", default: v.maximumWebSocketsPerUser, in: 1...4096)
            v.refusalLogIntervalSeconds = try server.double("refusalLogIntervalSeconds", default: v.refusalLogIntervalSeconds, in: 0.1...3600)
            v.minimumFreeDiskBytes = Int64(try server.integer("minimumFreeDiskMegabytes", default: Int(v.minimumFreeDiskBytes / 1_048_576),
                                                              in: 0...1_000_000)) * 1_048_576
            if let problem = v.problems().first { throw server.error(problem) }
            config.server = v
        }
        if let battery = try root.mapping("battery") {
            try battery.allowOnly(["checked", "capacityWattHours", "idleWatts", "driveJoulesPerMetre", "liftJoulesPerMetre",
                                   "turnJoulesPerDegree", "stopPercent", "marginFactor"])
            var b = c.battery
            b.checked = try battery.bool("checked", default: b.checked)
            b.capacityWattHours = try battery.double("capacityWattHours", default: b.capacityWattHours, in: 10...100_000)
            b.idleWatts = try battery.double("idleWatts", default: b.idleWatts, in: 0...5000)
            b.driveJoulesPerMetre = try battery.double("driveJoulesPerMetre", default: b.driveJoulesPerMetre, in: 0...100_000)
            b.liftJoulesPerMetre = try battery.double("liftJoulesPerMetre", default: b.liftJoulesPerMetre, in: 0...100_000)
            b.turnJoulesPerDegree = try battery.double("turnJoulesPerDegree", default: b.turnJoulesPerDegree, in: 0...10_000)
            b.stopPercent = try battery.double("stopPercent", default: b.stopPercent, in: 1...90)
            b.marginFactor = try battery.double("marginFactor", default: b.marginFactor, in: 1...5)
            c.battery = b
        }
        if let ranging = try root.mapping("ranging") {
            try ranging.allowOnly(["frontForwardMetres", "rearForwardMetres", "rightMetres"])
            let d = RangePairGeometry()
            c.rangePair = RangePairGeometry(frontForwardMetres: try ranging.double("frontForwardMetres", default: d.frontForwardMetres, in: -2...2),
                                            rearForwardMetres: try ranging.double("rearForwardMetres", default: d.rearForwardMetres, in: -2...2),
                                            rightMetres: try ranging.double("rightMetres", default: d.rightMetres, in: -2...2))
            if let problem = c.rangePair.problems().first { throw ranging.error(problem) }
        }
        if let people = try root.mapping("people") {
            // What the loop does when the protective-field scanner sees someone (H9).
            try people.allowOnly(["warningSpeedMetresPerSecond", "resumeAfterClearMilliseconds", "speedUpAfterClearMilliseconds", "holdLimitSeconds",
                                  "outlineForwardMetres", "outlineRearMetres", "outlineHalfWidthMetres"])
            var p = PeoplePolicy()
            p.warningSpeedMetresPerSecond = try people.double("warningSpeedMetresPerSecond", default: p.warningSpeedMetresPerSecond, in: 0.01...0.5)
            p.resumeAfterClearMilliseconds = try people.integer("resumeAfterClearMilliseconds", default: p.resumeAfterClearMilliseconds, in: 500...60_000)
            p.speedUpAfterClearMilliseconds = try people.integer("speedUpAfterClearMilliseconds", default: p.speedUpAfterClearMilliseconds, in: 0...60_000)
            p.holdLimitSeconds = try people.double("holdLimitSeconds", default: p.holdLimitSeconds, in: 5...3600)
            p.outlineForwardMetres = try people.double("outlineForwardMetres", default: p.outlineForwardMetres, in: 0.05...2)
            p.outlineRearMetres = try people.double("outlineRearMetres", default: p.outlineRearMetres, in: 0.05...2)
            p.outlineHalfWidthMetres = try people.double("outlineHalfWidthMetres", default: p.outlineHalfWidthMetres, in: 0.05...2)
            c.people = p
        }
        if let probe = try root.mapping("probe") {
            try probe.allowOnly(["forwardMetres", "rightMetres", "upMetres"])
            let mount = ProbeMount(forwardMetres: try probe.double("forwardMetres", default: 0, in: -1.5...1.5),
                                   rightMetres: try probe.double("rightMetres", default: 0, in: -0.05...1.5),
                                   upMetres: try probe.double("upMetres", default: 0, in: -0.5...0.5))
            // Checked against the standard 0.10 m stand-off here; each plan checks its own.
            if let problem = mount.problems(standOffMetres: 0.10).first { throw probe.error(problem) }
            config.server.probeMount = mount
        }
        if let pose = try root.mapping("startPose") {
            // Protocol 1.1 (§9): given to a chassis that reports no pose yet; a 1.0 chassis
            // cannot take it, and robotd then refuses to start (ControlLoop.StartError).
            try pose.allowOnly(["xMetres", "yMetres", "headingDegrees"])
            c.startPose = StartPose(xMetres: try pose.double("xMetres", in: -1000...1000),
                                    yMetres: try pose.double("yMetres", in: -1000...1000),
                                    headingDegrees: try pose.double("headingDegrees", in: -180...180))
        }
        // Cross-field rules (lift range order, watchdog refresh vs timeout, …).
        if let problem = c.problems().first {
            throw root.error(problem)
        }
        config.control = c
        // The line budget (protocol §11): robotd keeps the polls within 70 % of the line.
        // Polls left to their defaults are stretched to fit (`LineBudget.fitted`); polls
        // an operator wrote are kept, warned about over 70 % (`--check-config`), and
        // refused when they need more than the whole line (statuses would go stale
        // without end), with a schedule that would fit.
        if let budget = config.lineBudget, budget.occupancy > LineBudget.limit {
            let fitted = LineBudget.fitted(endpoint: config.endpoint, configuration: c, turnaroundMicroseconds: config.lineTurnaroundMicroseconds)
            if !root.has("polls") {
                guard let fitted else {
                    throw root.error("the poll schedule cannot fit on the line even with the polls at their longest "
                                     + "(\(LineBudget.schedule(LineBudget.longest(c)))): \(budget.problem ?? budget.description)")
                }
                config.control = fitted
                config.pollsFitted = "polls stretched from \(LineBudget.schedule(c)) to \(LineBudget.schedule(fitted)) to fit "
                    + "\(LineBudget.percent(LineBudget.limit)) of the line (\(budget.baud) baud, \(config.lineTurnaroundMicroseconds) µs turnaround)"
            } else if budget.occupancy > 1 {
                throw root.error("the poll schedule cannot fit on the line: \(budget.problem ?? budget.description)"
                                 + (fitted.map { "; a schedule that fits: \(LineBudget.schedule($0))" } ?? ""))
            }
        }
        // The watchdog budget (protocol review P13): a unit that stops answering holds the
        // line for one failed attempt (the response timeout, then as long again before the
        // flush) before the bus sends a waiting refresh; the firmware must not expire then.
        let worstGap = config.worstRefreshGapMilliseconds
        if worstGap > Double(config.control.watchdogTimeoutMilliseconds) {
            throw root.error(String(format: "one silent unit would let the firmware watchdog expire: a refresh can come %.0f ms after the last "
                                    + "(refresh every %d ms + 2 × %d ms response timeout + the write), over the %d ms watchdog timeout; "
                                    + "shorten bus.responseTimeoutMilliseconds or safety.watchdogRefreshMilliseconds, or lengthen "
                                    + "safety.watchdogTimeoutMilliseconds", worstGap, config.control.watchdogRefreshMilliseconds,
                                    config.endpoint.responseTimeoutMilliseconds, Int(config.control.watchdogTimeoutMilliseconds)))
        }
        return config
    }

    /// The longest time between two watchdog refreshes reaching the firmware while one unit
    /// is silent, milliseconds: the refresh period, one failed attempt to the silent unit
    /// (its response timeout and the wait before the flush; the bus sends a waiting refresh
    /// before any retry, and polls are not retried), and the refresh's own exchange.
    public var worstRefreshGapMilliseconds: Double {
        let refreshExchange = lineBudget?.exchanges.last.map { $0.microseconds / 1000 } ?? 5
        return Double(control.watchdogRefreshMilliseconds) + 2 * Double(endpoint.responseTimeoutMilliseconds) + refreshExchange
    }

    /// The share of the RS-485 line the poll schedule takes; nil on Modbus TCP.
    public var lineBudget: LineBudget? {
        LineBudget(endpoint: endpoint, configuration: control, turnaroundMicroseconds: lineTurnaroundMicroseconds)
    }
}
