import Foundation

/// One dwell at a point (or at the background station).
public struct DoseReading: Sendable, Equatable, Codable {
    public var counts: UInt32
    public var seconds: Double
    /// Dead-time corrected rate, and the dose rate it gives with the instrument's
    /// sensitivity (raw) and calibration factor (gross = raw × factor).
    public var countRatePerSecond: Double
    public var rawDoseRate: Double
    public var grossDoseRate: Double
    public var instrumentDoseRate: Double
    public var overload: Bool
    public var takenAt: Date

    public init(counts: UInt32, seconds: Double, countRatePerSecond: Double, rawDoseRate: Double, grossDoseRate: Double,
                instrumentDoseRate: Double, overload: Bool, takenAt: Date) {
        self.counts = counts
        self.seconds = seconds
        self.countRatePerSecond = countRatePerSecond
        self.rawDoseRate = rawDoseRate
        self.grossDoseRate = grossDoseRate
        self.instrumentDoseRate = instrumentDoseRate
        self.overload = overload
        self.takenAt = takenAt
    }
}

/// What a point (or the container) came out as, in rising order of concern.
public enum Outcome: String, Sendable, Codable, Comparable {
    /// Not distinguishable from background.
    case pass
    /// The evidence cannot carry a verdict (the background moved more than the model
    /// carries, or a reading above the limit lacks its re-measure): measure again.
    case inconclusive
    /// Significantly above background, but within the limit.
    case anomalous
    /// Above background + limit (confirmed by the re-measure).
    case exceeds

    private var rank: Int {
        switch self {
        case .pass: 0
        case .inconclusive: 1
        case .anomalous: 2
        case .exceeds: 3
        }
    }

    public static func < (a: Outcome, b: Outcome) -> Bool { a.rank < b.rank }
}

/// The instrument as it was during the scan.
public struct InstrumentRecord: Sendable, Equatable, Codable {
    public var serialNumber: String
    public var sensitivityCountsPerSecondPerMicrosievertPerHour: Double
    public var calibrationFactor: Double
    /// YYYYMMDD.
    public var calibrationDate: UInt32
    public var calibrationExpiry: UInt32
    /// The controller's dead-time correction in force (seconds; absent on scans recorded
    /// before it was kept): the reading depends on it, so the record says it.
    public var deadTimeSeconds: Double?
    /// The last check-source test of this detector within 24 h before the scan, if any.
    public var lastCheck: InstrumentCheckSummary?

    public init(serialNumber: String, sensitivityCountsPerSecondPerMicrosievertPerHour: Double, calibrationFactor: Double,
                calibrationDate: UInt32, calibrationExpiry: UInt32, deadTimeSeconds: Double? = nil, lastCheck: InstrumentCheckSummary? = nil) {
        self.deadTimeSeconds = deadTimeSeconds
        self.lastCheck = lastCheck
        self.serialNumber = serialNumber
        self.sensitivityCountsPerSecondPerMicrosievertPerHour = sensitivityCountsPerSecondPerMicrosievertPerHour
        self.calibrationFactor = calibrationFactor
        self.calibrationDate = calibrationDate
        self.calibrationExpiry = calibrationExpiry
    }

    /// Counts per second per unit of gross dose rate.
    var countsPerGrossDose: Double { sensitivityCountsPerSecondPerMicrosievertPerHour / calibrationFactor }
}

/// The judged result of one point.
public struct PointJudgement: Sendable, Equatable, Codable {
    public var pointIndex: Int
    public var grossMean: Double
    public var grossMax: Double
    public var grossDeviation: Double
    public var net: Double
    public var netUncertainty: Double
    public var outcome: Outcome
    /// Rule 2 only: the background modelled at this point (gross units), the net of the
    /// re-measure against the station, the pooled net the "exceeds" test used, and why the
    /// point came out as it did.
    public var modelBackground: Double?
    /// Rule 2, revision 2: the level the point was judged against when the background moved
    /// (a run's or the neighbouring points' median), as a fraction above `modelBackground`,
    /// which then stays the container's model: a hot spot is fitted to the excess over it.
    public var levelShiftFraction: Double?
    public var remeasureNet: Double?
    public var pooledNet: Double?
    public var reason: String?

    public init(pointIndex: Int, grossMean: Double, grossMax: Double, grossDeviation: Double, net: Double,
                netUncertainty: Double, outcome: Outcome) {
        self.pointIndex = pointIndex
        self.grossMean = grossMean
        self.grossMax = grossMax
        self.grossDeviation = grossDeviation
        self.net = net
        self.netUncertainty = netUncertainty
        self.outcome = outcome
    }
}

/// The container's verdict and the statistics behind it.
public struct Verdict: Sendable, Equatable, Codable {
    public struct FaceSummary: Sendable, Equatable, Codable {
        public var face: ProcedureProfile.Face
        public var meanGross: Double
        public var maxGross: Double
        public var maxPointIndex: Int
    }

    public var outcome: Outcome
    public var backgroundMean: Double
    public var backgroundDeviation: Double
    public var backgroundReadings: Int
    public var limit: Double
    /// Per-point α after the multiple-comparison correction, and its k.
    public var pointAlpha: Double
    public var k: Double
    /// As dose rates (gross units) for a typical point's dwell.
    public var decisionThreshold: Double
    public var detectionLimit: Double
    public var maxNet: Double
    public var maxNetPointIndex: Int?
    public var points: [PointJudgement]
    public var faces: [FaceSummary]
    public var flags: [String]
    /// End-of-scan background mean minus the start's (0 without an end background).
    public var backgroundDrift: Double
    /// The rule the scan was judged by, with every setting and characteristic value;
    /// `nil` for rule 1 (scans recorded before rule 2).
    public var rule: DecisionRuleRecord?

    public init(outcome: Outcome, backgroundMean: Double, backgroundDeviation: Double, backgroundReadings: Int, limit: Double,
                pointAlpha: Double, k: Double, decisionThreshold: Double, detectionLimit: Double, maxNet: Double,
                maxNetPointIndex: Int?, points: [PointJudgement], faces: [FaceSummary], flags: [String], backgroundDrift: Double = 0, rule: DecisionRuleRecord? = nil) {
        self.backgroundDrift = backgroundDrift
        self.rule = rule
        self.outcome = outcome
        self.backgroundMean = backgroundMean
        self.backgroundDeviation = backgroundDeviation
        self.backgroundReadings = backgroundReadings
        self.limit = limit
        self.pointAlpha = pointAlpha
        self.k = k
        self.decisionThreshold = decisionThreshold
        self.detectionLimit = detectionLimit
        self.maxNet = maxNet
        self.maxNetPointIndex = maxNetPointIndex
        self.points = points
        self.faces = faces
        self.flags = flags
    }
}

/// Why a verdict cannot be computed.
public enum JudgementRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case calibrationExpired(expiry: UInt32, scanDate: UInt32)
    case overload(pointIndex: Int?)
    case implausibleBackground(mean: Double, minimum: Double, maximum: Double)
    case noBackground

    public var description: String {
        switch self {
        case let .calibrationExpired(expiry, date):
            return "the detector's calibration expired on \(expiry) (scan date \(date)); recalibrate, or use a profile whose calibration policy is 'flag'"
        case .overload(let index):
            return "the detector was overloaded" + (index.map { " at point \($0)" } ?? " during the background") + "; the reading is clipped and cannot be judged"
        case let .implausibleBackground(mean, minimum, maximum):
            return String(format: "background %.3f is outside the plausible %.3f to %.3f; check the station and the detector", mean, minimum, maximum)
        case .noBackground:
            return "no background was measured"
        }
    }
}

/// The judgement of SN/T 0570 §5 and §6: background + limit, significance with a
/// container-level false-alarm rate, re-measure confirmation. A profile with decision
/// settings is judged by planned rule 2 (`PlannedJudgement`); one without (every scan
/// recorded before it) by rule 1, below, unchanged so stored verdicts verify.
public enum Judgement {
    /// `points` maps a plan point's index to its readings; `remeasures` to re-measure readings.
    public static func evaluate(plan: ScanPlan, instrument: InstrumentRecord, scanDate: UInt32, background: [DoseReading],
                                points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]]) throws(JudgementRefusal) -> Verdict {
        if let settings = plan.profile.decision {
            return try PlannedJudgement.evaluate(plan: plan, settings: settings, instrument: instrument, scanDate: scanDate,
                                                 background: background, points: points, remeasures: remeasures)
        }
        return try evaluateRuleOne(plan: plan, instrument: instrument, scanDate: scanDate, background: background, points: points,
                                   remeasures: remeasures)
    }

    /// What both rules refuse: an expired calibration under the refuse policy, no
    /// background, an overloaded background. Returns the flags to carry (an expired
    /// calibration under the flag policy).
    static func checkInstrumentAndBackground(profile: ProcedureProfile, instrument: InstrumentRecord, scanDate: UInt32,
                                             background: [DoseReading]) throws(JudgementRefusal) -> [String] {
        var flags: [String] = []
        if scanDate > instrument.calibrationExpiry {
            if profile.calibrationPolicy == .refuse {
                throw .calibrationExpired(expiry: instrument.calibrationExpiry, scanDate: scanDate)
            }
            flags.append("calibration expired on \(instrument.calibrationExpiry)")
        }
        guard !background.isEmpty else { throw .noBackground }
        if background.contains(where: \.overload) { throw .overload(pointIndex: nil) }
        return flags
    }

    /// Rule 1: every point against the station background with a Šidák-corrected α, and
    /// "exceeds" when the first reading and the re-measure are both above the limit.
    static func evaluateRuleOne(plan: ScanPlan, instrument: InstrumentRecord, scanDate: UInt32, background: [DoseReading],
                                points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]]) throws(JudgementRefusal) -> Verdict {
        let profile = plan.profile
        let flags = try checkInstrumentAndBackground(profile: profile, instrument: instrument, scanDate: scanDate, background: background)
        for (index, readings) in points where readings.contains(where: \.overload) { throw .overload(pointIndex: index) }
        let (bgMean, bgDeviation) = CountingStatistics.meanAndDeviation(background.map(\.grossDoseRate))
        guard bgMean >= profile.backgroundPlausibleMinimum, bgMean <= profile.backgroundPlausibleMaximum else {
            throw .implausibleBackground(mean: bgMean, minimum: profile.backgroundPlausibleMinimum, maximum: profile.backgroundPlausibleMaximum)
        }
        let bgSeconds = background.reduce(0) { $0 + $1.seconds }
        let bgRate = Double(background.reduce(0) { $0 + Int($1.counts) }) / bgSeconds
        // With an end-of-scan background, each point is judged against the background
        // interpolated to the time it was measured, so a slow drift is not an anomaly.
        let start = Array(background.prefix(profile.backgroundReadings))
        let end = Array(background.dropFirst(profile.backgroundReadings))
        func summary(_ set: [DoseReading]) -> (time: Date, mean: Double, rate: Double) {
            let seconds = set.reduce(0) { $0 + $1.seconds }
            let middle = set.map(\.takenAt.timeIntervalSince1970).reduce(0, +) / Double(set.count)
            return (Date(timeIntervalSince1970: middle), CountingStatistics.meanAndDeviation(set.map(\.grossDoseRate)).mean,
                    Double(set.reduce(0) { $0 + Int($1.counts) }) / seconds)
        }
        let startSummary = summary(start)
        let endSummary = end.isEmpty ? nil : summary(end)
        func backgroundAt(_ time: Date) -> (mean: Double, rate: Double, seconds: Double) {
            guard let e = endSummary, e.time > startSummary.time else { return (bgMean, bgRate, bgSeconds) }
            let f = min(1, max(0, time.timeIntervalSince(startSummary.time) / e.time.timeIntervalSince(startSummary.time)))
            return (startSummary.mean + f * (e.mean - startSummary.mean), startSummary.rate + f * (e.rate - startSummary.rate), bgSeconds)
        }
        let toDose = 1 / instrument.countsPerGrossDose
        let alphaPoint = CountingStatistics.pointAlpha(profile.alpha, points: plan.points.count, correction: profile.multipleComparison)
        let k = CountingStatistics.quantile(alpha: alphaPoint)
        let typicalSeconds = Double(profile.readingsPerPoint) * profile.readingSeconds
        let threshold = CountingStatistics.decisionThreshold(background: bgRate, grossSeconds: typicalSeconds, backgroundSeconds: bgSeconds, k: k, poissonSkew: true)
        let limitRate = CountingStatistics.detectionLimit(background: bgRate, grossSeconds: typicalSeconds, backgroundSeconds: bgSeconds, k: k, poissonSkew: true)

        var judged: [PointJudgement] = []
        for point in plan.points {
            guard let readings = points[point.index], !readings.isEmpty else { continue }
            let when = Date(timeIntervalSince1970: readings.map(\.takenAt.timeIntervalSince1970).reduce(0, +) / Double(readings.count))
            judged.append(judge(point.index, readings, remeasure: remeasures[point.index] ?? [], background: backgroundAt(when),
                                k: k, limit: profile.limitAboveBackground, toDose: toDose))
        }
        var faces: [Verdict.FaceSummary] = []
        for face in profile.faces {
            let onFace = judged.filter { j in plan.points[j.pointIndex].face == face }
            guard let top = onFace.max(by: { $0.grossMean < $1.grossMean }) else { continue }
            faces.append(Verdict.FaceSummary(face: face, meanGross: onFace.reduce(0) { $0 + $1.grossMean } / Double(onFace.count),
                                             maxGross: top.grossMean, maxPointIndex: top.pointIndex))
        }
        let hottest = judged.max { $0.net < $1.net }
        return Verdict(outcome: judged.map(\.outcome).max() ?? .pass, backgroundMean: bgMean, backgroundDeviation: bgDeviation,
                       backgroundReadings: background.count, limit: profile.limitAboveBackground, pointAlpha: alphaPoint, k: k,
                       decisionThreshold: threshold * toDose, detectionLimit: limitRate * toDose, maxNet: hottest?.net ?? 0,
                       maxNetPointIndex: hottest?.pointIndex, points: judged, faces: faces, flags: flags,
                       backgroundDrift: endSummary.map { $0.mean - startSummary.mean } ?? 0)
    }

    static func judge(_ index: Int, _ readings: [DoseReading], remeasure: [DoseReading], background: (mean: Double, rate: Double, seconds: Double),
                      k: Double, limit: Double, toDose: Double) -> PointJudgement {
        let gross = readings.map(\.grossDoseRate)
        let (mean, deviation) = CountingStatistics.meanAndDeviation(gross)
        let seconds = readings.reduce(0) { $0 + $1.seconds }
        let rate = Double(readings.reduce(0) { $0 + Int($1.counts) }) / max(seconds, 1e-9)
        let (netRate, u) = CountingStatistics.net(gross: rate, grossSeconds: seconds, background: background.rate, backgroundSeconds: background.seconds)
        let threshold = CountingStatistics.decisionThreshold(background: background.rate, grossSeconds: seconds, backgroundSeconds: background.seconds, k: k, poissonSkew: true)
        var outcome: Outcome = netRate > threshold ? .anomalous : .pass
        if mean > background.mean + limit {
            // The alarm stands only if the re-measure exceeds too.
            let confirmed = remeasure.isEmpty || CountingStatistics.meanAndDeviation(remeasure.map(\.grossDoseRate)).mean > background.mean + limit
            outcome = confirmed ? .exceeds : .anomalous
        }
        return PointJudgement(pointIndex: index, grossMean: mean, grossMax: gross.max() ?? mean, grossDeviation: deviation,
                              net: netRate * toDose, netUncertainty: u * toDose, outcome: outcome)
    }
}
