import Foundation
import FirmwareProtocol
@_exported import StrictYAML

/// A HIL scenario: the yard, the containers and sources in it, the background, the
/// robot's start, the link, and faults over time. Loaded from `hil/scenarios/*.yaml`.
public struct Scenario: Sendable {
    public struct TimedFault: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case bus(BusFault, unit: UInt8?, times: Int, requests: FaultedRequests = .any)
            case device(DeviceFault)
        }
        public var atSeconds: Double
        public var kind: Kind

        public init(atSeconds: Double, kind: Kind) {
            self.atSeconds = atSeconds
            self.kind = kind
        }
    }

    public var name: String
    public var seed: UInt64 = 1
    public var timeScale: Double = 1
    public var lineTiming = LineTiming()
    public var settings = RobotSettings()
    public var field = RadiationField()
    public var startX = 0.0
    public var startY = 0.0
    public var startHeadingDegrees = 0.0
    public var startLiftMetres = 1.0
    public var faults: [TimedFault] = []
    /// People walking through the yard, for the protective-field scanner (H9).
    public var people: [WalkingPerson] = []
    public var busFaultRates = FaultInjector.Rates()

    public init(name: String) {
        self.name = name
    }

    /// Builds the firmware model this scenario describes.
    public func makeModel() -> FirmwareModel {
        let model = FirmwareModel(settings: settings, field: field, seed: seed, startX: startX, startY: startY,
                                  startHeadingDegrees: startHeadingDegrees, startLiftMetres: startLiftMetres)
        for person in people { model.addPerson(person) }
        return model
    }

    public func makeFaultInjector() -> FaultInjector {
        let injector = FaultInjector(seed: seed &+ 1)
        injector.setRates(busFaultRates)
        return injector
    }

    public static func load(path: String) throws(ConfigurationFileError) -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationFileError(file: path, line: nil, column: nil, field: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String = "scenario") throws(ConfigurationFileError) -> Scenario {
        let root = try YAMLFields.parse(text, file: file)
        try root.allowOnly(["name", "seed", "timeScale", "lineTiming", "robot", "battery", "background", "detector",
                            "containers", "people", "faults", "busFaultRates", "deviant"])
        var scenario = Scenario(name: try root.string("name"))
        scenario.seed = UInt64(try root.integer("seed", default: 1, in: 0...Int.max))
        scenario.timeScale = try root.double("timeScale", default: 1, in: 0.01...100)

        if let timing = try root.mapping("lineTiming") {
            try timing.allowOnly(["enabled", "baud", "bitsPerCharacter", "turnaroundMicroseconds"])
            scenario.lineTiming = LineTiming(
                enabled: try timing.bool("enabled", default: true),
                baud: try timing.integer("baud", default: 115_200, in: 1200...4_000_000),
                bitsPerCharacter: try timing.integer("bitsPerCharacter", default: 10, in: 10...12),
                turnaroundMicroseconds: try timing.integer("turnaroundMicroseconds", default: 500, in: 0...100_000))
        }
        if let robot = try root.mapping("robot") {
            try robot.allowOnly(["x", "y", "headingDegrees", "liftMetres", "probeForwardMetres", "probeRightMetres", "probeUpMetres",
                                 "poseKnownAtPowerUp", "odometryScaleError", "rangePair", "fieldScanner"])
            scenario.settings.poseKnownAtPowerUp = try robot.bool("poseKnownAtPowerUp", default: true)
            scenario.settings.odometryScaleError = try robot.double("odometryScaleError", default: 0, in: -0.1...0.1)
            if let pair = try robot.mapping("rangePair") {
                try pair.allowOnly(["fitted", "noiseMetres", "maximumRangeMetres", "faulted", "frontBiasMetres"])
                if try pair.bool("fitted", default: true) {
                    var r = RangePairSettings()
                    r.noiseMetres = try pair.double("noiseMetres", default: r.noiseMetres, in: 0...0.2)
                    r.maximumRangeMetres = try pair.double("maximumRangeMetres", default: r.maximumRangeMetres, in: 0.5...10)
                    r.faulted = try pair.bool("faulted", default: false)
                    r.frontBiasMetres = try pair.double("frontBiasMetres", default: 0, in: -1...1)
                    scenario.settings.rangePair = r
                } else {
                    scenario.settings.rangePair = nil
                }
            }
            if let scanner = try robot.mapping("fieldScanner") {
                try scanner.allowOnly(["fitted", "faulted", "responseSeconds"])
                if try scanner.bool("fitted", default: true) {
                    var f = FieldScannerSettings()
                    f.faulted = try scanner.bool("faulted", default: false)
                    f.responseSeconds = try scanner.double("responseSeconds", default: f.responseSeconds, in: 0.01...0.5)
                    scenario.settings.fieldScanner = f
                } else {
                    scenario.settings.fieldScanner = nil
                }
            }
            scenario.settings.probeForwardMetres = try robot.double("probeForwardMetres", default: 0, in: -1.5...1.5)
            scenario.settings.probeRightMetres = try robot.double("probeRightMetres", default: 0, in: -1.5...1.5)
            scenario.settings.probeUpMetres = try robot.double("probeUpMetres", default: 0, in: -0.5...0.5)
            scenario.startX = try robot.double("x", default: 0, in: -10_000...10_000)
            scenario.startY = try robot.double("y", default: 0, in: -10_000...10_000)
            scenario.startHeadingDegrees = try robot.double("headingDegrees", default: 0, in: -180...180)
            scenario.startLiftMetres = try robot.double("liftMetres", default: 1.0,
                                                        in: scenario.settings.liftMinimumMetres...scenario.settings.liftMaximumMetres)
        }
        if let battery = try root.mapping("battery") {
            try battery.allowOnly(["capacityWattHours", "chargePercent", "idleWatts", "driveJoulesPerMetre", "liftJoulesPerMetre",
                                   "turnJoulesPerDegree", "consumptionFactor", "currentMonitored"])
            var b = BatterySettings()
            b.capacityWattHours = try battery.double("capacityWattHours", default: b.capacityWattHours, in: 10...100_000)
            b.initialChargePercent = try battery.double("chargePercent", default: b.initialChargePercent, in: 0...100)
            b.idleWatts = try battery.double("idleWatts", default: b.idleWatts, in: 0...5000)
            b.driveJoulesPerMetre = try battery.double("driveJoulesPerMetre", default: b.driveJoulesPerMetre, in: 0...100_000)
            b.liftJoulesPerMetre = try battery.double("liftJoulesPerMetre", default: b.liftJoulesPerMetre, in: 0...100_000)
            b.turnJoulesPerDegree = try battery.double("turnJoulesPerDegree", default: b.turnJoulesPerDegree, in: 0...10_000)
            b.consumptionFactor = try battery.double("consumptionFactor", default: 1, in: 0.1...10)
            b.currentMonitored = try battery.bool("currentMonitored", default: true)
            scenario.settings.battery = b
        }
        if let background = try root.mapping("background") {
            try background.allowOnly(["doseRateMicrosievertsPerHour", "driftAmplitude", "driftPeriodSeconds", "terrestrialFraction",
                                      "heightGradientPerMetre", "shadowingScale", "siteOffsetFraction", "siteRadiusMetres",
                                      "randomWalkPerRootHour", "rain"])
            scenario.field.backgroundMicrosievertsPerHour = try background.double("doseRateMicrosievertsPerHour", default: 0.1, in: 0...100)
            scenario.field.driftAmplitude = try background.double("driftAmplitude", default: 0.1, in: 0...0.9)
            scenario.field.driftPeriodSeconds = try background.double("driftPeriodSeconds", default: 7200, in: 1...1e7)
            var e = BackgroundEnvironment()
            e.terrestrialFraction = try background.double("terrestrialFraction", default: e.terrestrialFraction, in: 0...1)
            e.heightGradientPerMetre = try background.double("heightGradientPerMetre", default: 0, in: -0.2...0.2)
            e.shadowingScale = try background.double("shadowingScale", default: 0, in: 0...3)
            e.siteOffsetFraction = try background.double("siteOffsetFraction", default: 0, in: -0.5...1)
            e.siteRadiusMetres = try background.double("siteRadiusMetres", default: e.siteRadiusMetres, in: 0...8)
            e.randomWalkPerRootHour = try background.double("randomWalkPerRootHour", default: 0, in: 0...0.5)
            for rain in try background.list("rain") {
                try rain.allowOnly(["startSeconds", "peakFraction", "riseMinutes", "durationMinutes", "decayHalfLifeMinutes"])
                e.rain.append(RainEvent(startSeconds: try rain.double("startSeconds", in: 0...1e7),
                                        peakFraction: try rain.double("peakFraction", in: 0...5),
                                        riseMinutes: try rain.double("riseMinutes", default: 10, in: 0.1...600),
                                        durationMinutes: try rain.double("durationMinutes", default: 20, in: 0.1...6000),
                                        decayHalfLifeMinutes: try rain.double("decayHalfLifeMinutes", default: 35, in: 1...600)))
            }
            scenario.field.environment = e
        }
        if let detector = try root.mapping("detector") {
            try detector.allowOnly(["serialNumber", "calibrationFactor", "calibrationDate", "calibrationExpiry",
                                    "sensitivityCountsPerSecondPerMicrosievertPerHour", "deadTimeMicroseconds",
                                    "timeConstantSeconds", "rangeMaxMicrosievertsPerHour", "deadTimeParalysable", "response",
                                    "responseDriftFraction"])
            var d = DetectorSettings()
            d.deadTimeParalysable = try detector.bool("deadTimeParalysable", default: false)
            d.responseDriftFraction = try detector.double("responseDriftFraction", default: 0, in: -0.9...1)
            if let response = try detector.mapping("response") {
                try response.allowOnly(["background", "norm"] + Nuclide.allCases.map(\.rawValue))
                d.response.background = try response.double("background", default: 1, in: 0.2...5)
                d.response.norm = try response.double("norm", default: 1, in: 0.2...5)
                for nuclide in Nuclide.allCases where response.has(nuclide.rawValue) {
                    d.response.byNuclide[nuclide.rawValue] = try response.double(nuclide.rawValue, in: 0.2...5)
                }
            }
            d.serialNumber = try detector.string("serialNumber", default: d.serialNumber)
            if d.serialNumber.utf8.count > 16 {
                throw detector.error("'\(d.serialNumber)' is longer than 16 characters", at: detector.value("serialNumber"),
                                     field: "detector.serialNumber")
            }
            d.calibrationFactor = try detector.double("calibrationFactor", default: 1, in: 0.01...4)
            d.calibrationDate = UInt32(try detector.integer("calibrationDate", default: Int(d.calibrationDate), in: 19_700_101...29_991_231))
            d.calibrationExpiry = UInt32(try detector.integer("calibrationExpiry", default: Int(d.calibrationExpiry), in: 19_700_101...29_991_231))
            d.sensitivityCountsPerSecondPerMicrosievertPerHour = try detector.double(
                "sensitivityCountsPerSecondPerMicrosievertPerHour", default: 300, in: 0.1...6000)
            d.deadTimeMicroseconds = try detector.double("deadTimeMicroseconds", default: 2, in: 0...1000)
            d.timeConstantSeconds = try detector.double("timeConstantSeconds", default: 2, in: 0.05...60)
            d.rangeMaxMicrosievertsPerHour = try detector.double("rangeMaxMicrosievertsPerHour", default: 1_000_000, in: 1...4_000_000)
            scenario.settings.detector = d
        }
        let nuclides = Nuclide.allCases.map { ($0.rawValue, $0) }
        let types = ContainerType.allCases.map { ($0.rawValue, $0) }
            + [("20ft", .twentyFoot), ("40ft", .fortyFoot), ("40ft-hc", .fortyFootHighCube), ("45ft-hc", .fortyFiveFootHighCube)]
        for entry in try root.list("containers") {
            try entry.allowOnly(["number", "type", "x", "y", "headingDegrees", "cargoDensity", "wallThicknessCentimetres", "sources",
                                 "normDoseRateAtContactMicrosievertsPerHour", "corrugationDepthMetres"])
            let type: ContainerType = try entry.choice("type", types)
            var container = PlacedContainer(
                number: try entry.string("number"), type: type,
                x: try entry.double("x", in: -10_000...10_000), y: try entry.double("y", in: -10_000...10_000),
                headingDegrees: try entry.double("headingDegrees", default: 0, in: -180...180),
                cargoDensity: try entry.double("cargoDensity", default: 0.3, in: 0...8),
                wallThicknessCentimetres: try entry.double("wallThicknessCentimetres", default: 0.2, in: 0...5))
            container.corrugationDepthMetres = try entry.double("corrugationDepthMetres", default: 0, in: 0...0.1)
            container.normDoseRateAtContactMicrosievertsPerHour = try entry.double("normDoseRateAtContactMicrosievertsPerHour", default: 0, in: 0...1000)
            for source in try entry.list("sources") {
                try source.allowOnly(["nuclide", "activityMBq", "along", "across", "height"])
                container.sources.append(PointSource(
                    nuclide: try source.choice("nuclide", nuclides),
                    activityMBq: try source.double("activityMBq", in: 0...1e7),
                    along: try source.double("along", in: 0...type.lengthMetres),
                    across: try source.double("across", in: 0...type.widthMetres),
                    height: try source.double("height", in: 0...type.heightMetres)))
            }
            scenario.field.containers.append(container)
        }
        for entry in try root.list("people") {
            try entry.allowOnly(["fromX", "fromY", "toX", "toY", "speedMetresPerSecond", "startSeconds", "everySeconds"])
            scenario.people.append(WalkingPerson(
                fromX: try entry.double("fromX", in: -10_000...10_000), fromY: try entry.double("fromY", in: -10_000...10_000),
                toX: try entry.double("toX", in: -10_000...10_000), toY: try entry.double("toY", in: -10_000...10_000),
                speedMetresPerSecond: try entry.double("speedMetresPerSecond", default: 1.2, in: 0.1...3),
                startSeconds: try entry.double("startSeconds", default: 0, in: 0...1e7),
                everySeconds: entry.has("everySeconds") ? try entry.double("everySeconds", in: 1...1e7) : nil))
        }
        for entry in try root.list("faults") {
            scenario.faults.append(try parseFault(entry))
        }
        scenario.faults.sort { $0.atSeconds < $1.atSeconds }
        scenario.field.environment.prepare(seed: scenario.seed)
        if let rates = try root.mapping("busFaultRates") {
            try rates.allowOnly(["crcError", "noReply", "junkBytes", "lateReply"])
            var r = FaultInjector.Rates()
            r.crcError = try rates.double("crcError", default: 0, in: 0...1)
            r.noReply = try rates.double("noReply", default: 0, in: 0...1)
            r.junkBytes = try rates.double("junkBytes", default: 0, in: 0...1)
            r.lateReply = try rates.double("lateReply", default: 0, in: 0...1)
            guard r.crcError + r.noReply + r.junkBytes + r.lateReply <= 1 else {
                throw rates.error("the rates add up to more than 1")
            }
            scenario.busFaultRates = r
        }
        if root.has("deviant") {
            let list = try root.words("deviant").joined(separator: ",")
            do {
                scenario.settings.deviations = try Deviation.parse(list)
            } catch {
                throw root.error(error.message, field: "deviant")
            }
        }
        return scenario
    }

    /// One fault entry: `atSeconds`, `kind`, and the kind's parameters.
    static func parseFault(_ entry: YAMLFields, requireTime: Bool = true) throws(ConfigurationFileError) -> TimedFault {
        try entry.allowOnly(["atSeconds", "kind", "unit", "times", "requests", "milliseconds", "count", "code", "device", "on", "dose", "switch", "percent", "metres"])
        let at = requireTime ? try entry.double("atSeconds", in: 0...1e7) : try entry.double("atSeconds", default: 0, in: 0...1e7)
        let kind = try entry.string("kind")
        let unit: UInt8? = entry.has("unit") ? UInt8(try entry.integer("unit", in: 1...247)) : nil
        let times = try entry.integer("times", default: 1, in: 1...100_000)
        let on = try entry.bool("on", default: true)
        let requests = try entry.choice("requests", FaultedRequests.allCases.map { ($0.rawValue, $0) }, default: .any)
        let fault: TimedFault.Kind
        switch kind {
        case "noReply": fault = .bus(.noReply, unit: unit, times: times, requests: requests)
        case "lateReply": fault = .bus(.lateReply(milliseconds: try entry.integer("milliseconds", default: 150, in: 1...60_000)), unit: unit, times: times, requests: requests)
        case "crcError": fault = .bus(.crcError, unit: unit, times: times, requests: requests)
        case "junkBytes": fault = .bus(.junkBytes(count: try entry.integer("count", default: 6, in: 1...256)), unit: unit, times: times, requests: requests)
        case "splitFrame": fault = .bus(.splitFrame(gapMilliseconds: try entry.integer("milliseconds", default: 20, in: 0...10_000)), unit: unit, times: times, requests: requests)
        case "exception": fault = .bus(.exception(code: UInt8(try entry.integer("code", in: 1...255))), unit: unit, times: times, requests: requests)
        case "linkDrop": fault = .bus(.linkDrop(milliseconds: try entry.integer("milliseconds", in: 1...600_000)), unit: nil, times: 1)
        case "reboot":
            if entry.has("device") {
                let device: String = try entry.choice("device", RegisterMap.devices.map { ($0.name, $0.name) })
                fault = .device(.restart(device: device))
            } else {
                fault = .device(.reboot)
            }
        case "driveFault":
            let device: String = try entry.choice("device", [("chassis", "chassis"), ("lift", "lift")])
            fault = .device(.driveFault(device: device, code: UInt16(try entry.integer("code", default: 1, in: 1...65535))))
        case "liftStuck": fault = .device(.liftStuck(on))
        case "estop": fault = .device(.estopButton(on))
        case "detectorOverload": fault = .device(.detectorOverload(on))
        case "detectorDead": fault = .device(.detectorDead(on))
        case "bumper": fault = .device(.bumper(on))
        case "limitSwitch":
            let which = try entry.choice("switch", [("upper", true), ("lower", false)])
            fault = .device(.limitSwitch(upper: which, closed: on))
        case "checkSource":
            fault = .device(.checkSource(microsievertsPerHour: on ? try entry.double("dose", default: 5, in: 0...1000) : 0))
        case "batteryCharge": fault = .device(.batteryCharge(percent: try entry.double("percent", in: 0...100)))
        case "fieldScannerFault": fault = .device(.fieldScannerFault(on))
        case "obstacle": fault = .device(.obstacleAhead(metres: on ? try entry.double("metres", default: 1, in: 0...20) : nil))
        default:
            throw entry.error("'\(kind)' is not a fault kind; allowed \(faultKinds.joined(separator: ", "))",
                              at: entry.value("kind"), field: entry.path.isEmpty ? "kind" : "\(entry.path).kind")
        }
        return TimedFault(atSeconds: at, kind: fault)
    }

    public static let faultKinds = ["noReply", "lateReply", "crcError", "junkBytes", "splitFrame", "exception", "linkDrop",
                                    "reboot", "driveFault", "liftStuck", "estop", "detectorOverload", "detectorDead", "bumper",
                                    "checkSource", "batteryCharge", "limitSwitch", "fieldScannerFault", "obstacle"]

    /// Parses a fault given as `kind=crcError unit=2 times=3` (the control socket's form).
    public static func parseFaultCommand(_ words: [String]) throws(ConfigurationFileError) -> TimedFault.Kind {
        var lines: [String] = []
        for word in words {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter }) else {
                throw ConfigurationFileError(file: "control", line: nil, column: nil, field: "",
                                             message: "'\(word)' is not key=value, e.g. kind=crcError unit=2 times=3")
            }
            lines.append("\(parts[0]): \(parts[1])")
        }
        let yaml = lines.joined(separator: "\n")
        let fields = try YAMLFields.parse(yaml.isEmpty ? "{}" : yaml, file: "control")
        return try parseFault(fields, requireTime: false).kind
    }
}
