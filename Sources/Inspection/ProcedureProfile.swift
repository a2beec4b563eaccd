import Foundation
import StrictYAML

/// Every parameter of the inspection procedure, versioned and stored with each scan.
/// Defaults are those of `docs/domain.md`, Inspection procedure (SN/T 0570-2007 as
/// reconstructed there).
public struct ProcedureProfile: Sendable, Equatable, Codable {
    public enum DoseUnit: String, Sendable, Codable { case microsievertPerHour = "uSv/h", micrograyPerHour = "uGy/h" }
    public enum Face: String, Sendable, Codable, CaseIterable { case left, right, door, front }
    public enum MultipleComparison: String, Sendable, Codable { case sidak, bonferroni, none }
    public enum CalibrationPolicy: String, Sendable, Codable { case refuse, flag }

    public var name = "SN/T 0570-2007"
    public var version = 1
    public var doseUnit = DoseUnit.microsievertPerHour

    // Background (本底).
    public var backgroundDistanceMetres = 10.0
    public var backgroundHeightMetres = 1.0
    public var backgroundReadings = 10
    public var backgroundIntervalSeconds = 10.0
    public var backgroundPlausibleMinimum = 0.04
    public var backgroundPlausibleMaximum = 0.25
    /// Measure the background again after the survey and interpolate between the two in
    /// time: the background drifts over a long scan (±10 % an hour is ordinary).
    public var backgroundRepeatAtEnd = true
    /// A resumed scan whose background is older than this measures it again and surveys
    /// again (simulated seconds with a time-scaled simulator).
    public var backgroundMaxAgeSeconds = 3600.0

    // Survey.
    public var faces: [Face] = [.left, .right, .door, .front]
    public var standOffMetres = 0.10
    public var maxColumnSpacingMetres = 0.5
    public var heightsMetres: [Double] = [0.5, 1.0, 1.5, 2.0, 2.5]
    /// After the robot stops, before counting: the mast's sway. Readings count pulses against the
    /// detector's time base, so a rate display's time constant (the 2 s of manual practice) does not apply.
    public var settleSeconds = 0.3
    public var readingsPerPoint = 3
    public var readingSeconds = 1.0

    // Judgement.
    public var limitAboveBackground = 0.25
    public var remeasureCount = 1
    public var remeasureDwellFactor = 3.0
    /// Container-level false-alarm rate (`docs/procedure.md`): 0.5 %, so that the rate a
    /// Monte Carlo measures stays under 1 % with its uncertainty; portal monitors aim at
    /// 10⁻³ per occupancy.
    public var alpha = 0.005
    public var multipleComparison = MultipleComparison.sidak
    public var calibrationPolicy = CalibrationPolicy.refuse
    /// Planned decision rule 2's settings; `nil` in scans recorded before it, which are
    /// judged by rule 1 (`Judgement`).
    public var decision: DecisionSettings? = DecisionSettings()

    // The moving survey (issue 14; `docs/procedure.md` §10). `nil`: every point is measured
    // standing still, as SN/T 0570 describes.
    /// The fastest the robot drives along a row while counting; the speed used is lower
    /// when the measured background asks for longer counting (`MovingSurvey`).
    public var surveyMaxSpeedMetresPerSecond: Double?
    /// The net dose rate at a point that the moving survey must mark for a static
    /// re-measure with 95 % probability at the measured background (μSv/h).
    public var surveyDetectionMicrosievertsPerHour: Double?
    /// True when the survey is measured while moving; points it marks are measured standing.
    public var movingSurvey: Bool { surveyMaxSpeedMetresPerSecond != nil }

    public init() {}

    /// Every problem in a profile file, each with its file, line and field.
    public struct Problems: Error, Sendable, CustomStringConvertible {
        public let problems: [ConfigurationFileError]
        public var description: String { problems.map(\.description).joined(separator: "\n") }
    }

    public static func load(path: String) throws(Problems) -> ProcedureProfile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Problems(problems: [ConfigurationFileError(file: path, line: nil, column: nil, field: "",
                                                             message: "cannot read the file: \(error.localizedDescription)")])
        }
        return try parse(text, file: path)
    }

    /// Parses a profile, collecting every bad field rather than stopping at the first.
    public static func parse(_ text: String, file: String) throws(Problems) -> ProcedureProfile {
        var errors: [ConfigurationFileError] = []
        func collect<T>(_ read: () throws(ConfigurationFileError) -> T) -> T? {
            do { return try read() } catch {
                errors.append(error)
                return nil
            }
        }
        guard let root = collect({ () throws(ConfigurationFileError) in try YAMLFields.parse(text, file: file) }) else {
            throw Problems(problems: errors)
        }
        var p = ProcedureProfile()
        _ = collect { () throws(ConfigurationFileError) in
            try root.allowOnly(["name", "version", "doseUnit", "background", "faces", "standOffMetres", "grid", "point",
                                "limitAboveBackground", "remeasure", "significance", "calibrationPolicy", "decision", "survey"])
        }
        p.name = collect { () throws(ConfigurationFileError) in try root.string("name") } ?? p.name
        p.version = collect { () throws(ConfigurationFileError) in try root.integer("version", in: 1...1_000_000) } ?? p.version
        p.doseUnit = collect { () throws(ConfigurationFileError) in
            if root.has("doseUnit"), (try? root.string("doseUnit")) == "uGy/h" {
                // Relabelling is not converting: the probe is calibrated in ambient dose
                // equivalent, and air kerma differs from it by a spectrum-dependent factor
                // (about 1.2 for Cs-137), so the limit would silently move by that much.
                throw root.error("'uGy/h' is not supported: the detector is calibrated in ambient dose equivalent (uSv/h), and converting "
                                 + "to air kerma needs a factor that depends on the spectrum; allowed: uSv/h", at: root.value("doseUnit"), field: "doseUnit")
            }
            return try root.choice("doseUnit", [("uSv/h", .microsievertPerHour)], default: p.doseUnit)
        } ?? p.doseUnit
        if let b = collect({ () throws(ConfigurationFileError) in try root.mapping("background") }) ?? nil {
            _ = collect { () throws(ConfigurationFileError) in
                try b.allowOnly(["distanceMetres", "heightMetres", "readings", "intervalSeconds", "plausibleMinimum", "plausibleMaximum",
                                 "repeatAtEnd", "maxAgeSeconds"])
            }
            p.backgroundDistanceMetres = collect { () throws(ConfigurationFileError) in try b.double("distanceMetres", default: 10, in: 2...100) } ?? p.backgroundDistanceMetres
            p.backgroundHeightMetres = collect { () throws(ConfigurationFileError) in try b.double("heightMetres", default: 1, in: 0.3...2.8) } ?? p.backgroundHeightMetres
            p.backgroundReadings = collect { () throws(ConfigurationFileError) in try b.integer("readings", default: 10, in: 2...100) } ?? p.backgroundReadings
            p.backgroundIntervalSeconds = collect { () throws(ConfigurationFileError) in try b.double("intervalSeconds", default: 10, in: 0.5...600) } ?? p.backgroundIntervalSeconds
            p.backgroundPlausibleMinimum = collect { () throws(ConfigurationFileError) in try b.double("plausibleMinimum", default: 0.04, in: 0...10) } ?? p.backgroundPlausibleMinimum
            p.backgroundPlausibleMaximum = collect { () throws(ConfigurationFileError) in try b.double("plausibleMaximum", default: 0.25, in: 0...10) } ?? p.backgroundPlausibleMaximum
            p.backgroundRepeatAtEnd = collect { () throws(ConfigurationFileError) in try b.bool("repeatAtEnd", default: true) } ?? p.backgroundRepeatAtEnd
            p.backgroundMaxAgeSeconds = collect { () throws(ConfigurationFileError) in try b.double("maxAgeSeconds", default: 3600, in: 60...86_400) }
                ?? p.backgroundMaxAgeSeconds
            if p.backgroundPlausibleMinimum >= p.backgroundPlausibleMaximum {
                errors.append(b.error("plausibleMinimum must be below plausibleMaximum"))
            }
        }
        if let faceList = collect({ () throws(ConfigurationFileError) in try root.list("faces") }), !faceList.isEmpty {
            var faces: [Face] = []
            for (i, node) in faceList.enumerated() {
                let name = node.node.string ?? ""
                if let face = Face(rawValue: name) {
                    if faces.contains(face) {
                        errors.append(node.error("face '\(name)' is listed twice", field: "faces[\(i)]"))
                    }
                    faces.append(face)
                } else {
                    errors.append(node.error("'\(name)' is not a face; allowed left, right, door, front (the top is out of reach)", field: "faces[\(i)]"))
                }
            }
            p.faces = faces
        } else if root.has("faces") {
            errors.append(root.error("at least one face is needed", field: "faces"))
        }
        p.standOffMetres = collect { () throws(ConfigurationFileError) in try root.double("standOffMetres", default: 0.1, in: 0...1) } ?? p.standOffMetres
        if let g = collect({ () throws(ConfigurationFileError) in try root.mapping("grid") }) ?? nil {
            _ = collect { () throws(ConfigurationFileError) in try g.allowOnly(["maxColumnSpacingMetres", "heightsMetres"]) }
            p.maxColumnSpacingMetres = collect { () throws(ConfigurationFileError) in try g.double("maxColumnSpacingMetres", default: 0.5, in: 0.1...5) } ?? p.maxColumnSpacingMetres
            if let heights = collect({ () throws(ConfigurationFileError) in try g.list("heightsMetres") }) {
                var values: [Double] = []
                for (i, h) in heights.enumerated() {
                    if let v = h.node.float, (0.35...2.75).contains(v) { values.append(v) } else {
                        errors.append(h.error("'\(h.node.string ?? "?")' is not a height from 0.35 to 2.75 m (the lift's range)", field: "grid.heightsMetres[\(i)]"))
                    }
                }
                if !heights.isEmpty { p.heightsMetres = values.sorted() }
            }
        }
        if let pt = collect({ () throws(ConfigurationFileError) in try root.mapping("point") }) ?? nil {
            for key in ["adaptiveTargetRelativeUncertainty", "adaptiveCapSeconds"] where pt.has(key) {
                errors.append(pt.error("adaptive dwell is not supported: every point is measured for point.readings × point.readingSeconds, "
                                       + "and a re-measure decides near the limit; remove '\(key)'", at: pt.value(key), field: "point.\(key)"))
            }
            _ = collect { () throws(ConfigurationFileError) in
                try pt.allowOnly(["settleSeconds", "readings", "readingSeconds", "adaptiveTargetRelativeUncertainty", "adaptiveCapSeconds"])
            }
            p.settleSeconds = collect { () throws(ConfigurationFileError) in try pt.double("settleSeconds", default: p.settleSeconds, in: 0...60) } ?? p.settleSeconds
            p.readingsPerPoint = collect { () throws(ConfigurationFileError) in try pt.integer("readings", default: 3, in: 1...100) } ?? p.readingsPerPoint
            p.readingSeconds = collect { () throws(ConfigurationFileError) in try pt.double("readingSeconds", default: 1, in: 0.1...60) } ?? p.readingSeconds
        }
        p.limitAboveBackground = collect { () throws(ConfigurationFileError) in try root.double("limitAboveBackground", default: 0.25, in: 0.01...100) } ?? p.limitAboveBackground
        if let r = collect({ () throws(ConfigurationFileError) in try root.mapping("remeasure") }) ?? nil {
            _ = collect { () throws(ConfigurationFileError) in try r.allowOnly(["count", "dwellFactor"]) }
            p.remeasureCount = collect { () throws(ConfigurationFileError) in try r.integer("count", default: 1, in: 0...5) } ?? p.remeasureCount
            p.remeasureDwellFactor = collect { () throws(ConfigurationFileError) in try r.double("dwellFactor", default: 3, in: 1...20) } ?? p.remeasureDwellFactor
        }
        if let s = collect({ () throws(ConfigurationFileError) in try root.mapping("significance") }) ?? nil {
            _ = collect { () throws(ConfigurationFileError) in try s.allowOnly(["alpha", "correction"]) }
            p.alpha = collect { () throws(ConfigurationFileError) in try s.double("alpha", default: 0.005, in: 0.0001...0.2) } ?? p.alpha
            p.multipleComparison = collect { () throws(ConfigurationFileError) in
                try s.choice("correction", [("sidak", .sidak), ("bonferroni", .bonferroni), ("none", .none)], default: .sidak)
            } ?? p.multipleComparison
        }
        p.calibrationPolicy = collect { () throws(ConfigurationFileError) in
            try root.choice("calibrationPolicy", [("refuse", .refuse), ("flag", .flag)], default: .refuse)
        } ?? p.calibrationPolicy
        if let d = collect({ () throws(ConfigurationFileError) in try root.mapping("decision") }) ?? nil {
            p.decision = DecisionSettings.parse(d, into: &errors)
        }
        if let v = collect({ () throws(ConfigurationFileError) in try root.mapping("survey") }) ?? nil {
            _ = collect { () throws(ConfigurationFileError) in try v.allowOnly(["mode", "maxSpeedMetresPerSecond", "detectionMicrosievertsPerHour"]) }
            let moving = collect { () throws(ConfigurationFileError) in try v.choice("mode", [("static", false), ("moving", true)], default: false) } ?? false
            if moving {
                p.surveyMaxSpeedMetresPerSecond = collect { () throws(ConfigurationFileError) in
                    try v.double("maxSpeedMetresPerSecond", default: 0.5, in: MovingSurvey.allowedSpeeds)
                } ?? 0.5
                p.surveyDetectionMicrosievertsPerHour = collect { () throws(ConfigurationFileError) in
                    try v.double("detectionMicrosievertsPerHour", default: 0.10, in: 0.01...1)
                } ?? 0.10
                if p.decision == nil {
                    errors.append(v.error("a moving survey needs decision rule 2 (its screen marks the points measured standing); "
                                          + "remove 'decision: {rule: snt0570-1}' or set survey.mode: static", at: v.value("mode"), field: "survey.mode"))
                }
                // The plan must be able to meet its own requirement at the plausible band's top.
                if p.surveyMaxSpeedMetresPerSecond != nil, let detection = p.surveyDetectionMicrosievertsPerHour,
                   let problem = MovingSurvey.problem(profile: p, backgroundMicrosievertsPerHour: p.backgroundPlausibleMaximum,
                                                      sensitivity: MovingSurvey.nominalSensitivity, detection: detection) {
                    errors.append(v.error(problem + " (at the plausible band's top; profile checked with a \(Int(MovingSurvey.nominalSensitivity)) "
                                          + "cps per μSv/h probe)", at: v.value("detectionMicrosievertsPerHour") ?? v.value("mode"),
                                          field: "survey.detectionMicrosievertsPerHour"))
                }
            }
        }
        guard errors.isEmpty else { throw Problems(problems: errors) }
        return p
    }
}
