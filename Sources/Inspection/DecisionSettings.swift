import Foundation
import StrictYAML

/// The settings of planned decision rule 2 (`docs/procedure.md`), stored with every
/// scan's profile so a stored scan is always judged again by the rule it was judged with.
/// A profile without them (every scan recorded before rule 2) is judged by rule 1.
public struct DecisionSettings: Sendable, Equatable, Codable {
    /// The rule's name as records and reports state it.
    public static let ruleName = "planned-2"
    /// The revision of rule 2 that new scans are judged with. Revision 2 (2026-12-08) judges
    /// a point against the level of the points measured around it in time whenever the
    /// station background moved beyond its counting, and asks its re-measure, not its
    /// selected first reading, whether it stands out by more than the movement
    /// (`docs/procedure.md` §5).
    public static let currentRevision = 2
    /// The revision this scan is judged with; `nil` in the settings stored before revisions
    /// existed, which are revision 1 and are judged (and verified again) as they were.
    public var revision: Int? = DecisionSettings.currentRevision
    /// The revision in force: 1 for settings stored before revisions existed.
    public var effectiveRevision: Int { revision ?? 1 }

    /// β of the detection limit (ISO 11929: its own quantile, not α's).
    public var beta = 0.05
    /// Screening: how many points of a clean container are re-measured on average. The
    /// per-point screening α is this over the number of points; a point is "anomalous" only
    /// if its re-measure alone is significant at the container α over this many candidates.
    public var expectedCandidates = 1.0
    /// The width of the "exceeds" uncertain zone, in standard uncertainties of the first
    /// reading (the ATP/CTP zones of portal practice): below L − z·u a point is within the
    /// limit at once; otherwise its re-measure is pooled with it and the pooled net is
    /// compared with L, which puts the 50 % point at the limit.
    public var exceedsZoneK = 1.645
    /// Relative standard uncertainty of the calibration and energy response (SN/T 1537
    /// allows 20 % at k = 3 over the energy range; a scattered spectrum behind cargo is
    /// further from Cs-137 than the calibration).
    public var calibrationRelativeUncertainty = 0.10
    /// How far above the station background the level at the container may sit before it
    /// is itself a finding (a uniform excess: NORM, or a container of contaminated scrap).
    public var siteOffsetAllowance = 0.10
    /// The background model's own relative error at a point (shadowing that departs from
    /// the geometry, drift that departs from the straight line between the backgrounds).
    public var modelResidualFraction = 0.03
    /// A start-to-end change of the station background larger than this fraction is more
    /// than the straight-line model carries: the scan is inconclusive.
    public var driftCapacityFraction = 0.25
    /// The background is also watched through the scan: the container's own readings in
    /// runs of this many consecutive points, after the model, must not move more than
    /// `windowCapacityFraction` of the background (a rain front, a vehicle parking beside).
    public var windowPoints = 25
    public var windowCapacityFraction = 0.10
    /// Points needed before the model is fitted during the scan to choose re-measures.
    public var minimumFitPoints = 5

    public init() {}

    /// Reads the profile's `decision` mapping, collecting every bad field.
    static func parse(_ d: YAMLFields, into errors: inout [ConfigurationFileError]) -> DecisionSettings? {
        var s = DecisionSettings()
        func collect<T>(_ read: () throws(ConfigurationFileError) -> T) -> T? {
            do { return try read() } catch {
                errors.append(error)
                return nil
            }
        }
        _ = collect { () throws(ConfigurationFileError) in
            try d.allowOnly(["rule", "revision", "beta", "expectedCandidates", "exceedsZoneK", "calibrationRelativeUncertainty", "siteOffsetAllowance",
                             "modelResidualFraction", "driftCapacityFraction", "windowPoints", "windowCapacityFraction", "minimumFitPoints"])
        }
        let rule = collect { () throws(ConfigurationFileError) in
            try d.choice("rule", [(ruleName, ruleName), ("snt0570-1", "snt0570-1")], default: ruleName)
        } ?? ruleName
        s.revision = collect { () throws(ConfigurationFileError) in
            try d.integer("revision", default: currentRevision, in: 1...currentRevision)
        } ?? s.revision
        s.beta = collect { () throws(ConfigurationFileError) in try d.double("beta", default: s.beta, in: 0.001...0.5) } ?? s.beta
        s.expectedCandidates = collect { () throws(ConfigurationFileError) in
            try d.double("expectedCandidates", default: s.expectedCandidates, in: 0.05...20)
        } ?? s.expectedCandidates
        s.exceedsZoneK = collect { () throws(ConfigurationFileError) in try d.double("exceedsZoneK", default: s.exceedsZoneK, in: 0...5) } ?? s.exceedsZoneK
        s.calibrationRelativeUncertainty = collect { () throws(ConfigurationFileError) in
            try d.double("calibrationRelativeUncertainty", default: s.calibrationRelativeUncertainty, in: 0...0.5)
        } ?? s.calibrationRelativeUncertainty
        s.siteOffsetAllowance = collect { () throws(ConfigurationFileError) in
            try d.double("siteOffsetAllowance", default: s.siteOffsetAllowance, in: 0...1)
        } ?? s.siteOffsetAllowance
        s.modelResidualFraction = collect { () throws(ConfigurationFileError) in
            try d.double("modelResidualFraction", default: s.modelResidualFraction, in: 0...0.5)
        } ?? s.modelResidualFraction
        s.driftCapacityFraction = collect { () throws(ConfigurationFileError) in
            try d.double("driftCapacityFraction", default: s.driftCapacityFraction, in: 0.01...5)
        } ?? s.driftCapacityFraction
        s.windowPoints = collect { () throws(ConfigurationFileError) in try d.integer("windowPoints", default: s.windowPoints, in: 5...500) } ?? s.windowPoints
        s.windowCapacityFraction = collect { () throws(ConfigurationFileError) in
            try d.double("windowCapacityFraction", default: s.windowCapacityFraction, in: 0.01...5)
        } ?? s.windowCapacityFraction
        s.minimumFitPoints = collect { () throws(ConfigurationFileError) in
            try d.integer("minimumFitPoints", default: s.minimumFitPoints, in: 5...1000)
        } ?? s.minimumFitPoints
        return rule == ruleName ? s : nil
    }
}

/// What a stored verdict says about the rule that produced it.
public struct DecisionRuleRecord: Sendable, Equatable, Codable {
    public var rule: String
    public var settings: DecisionSettings
    /// Container-level α, the per-point screening α and its k, the confirmation k (a
    /// re-measure alone), and the single-stage k (a point without a re-measure).
    public var containerAlpha: Double
    public var screeningAlpha: Double
    public var screeningK: Double
    public var confirmationK: Double
    public var singleStageK: Double
    public var betaK: Double
    /// The fitted background at the container.
    public var background: BackgroundModel?
    /// Station background rates (counts per second) at the start and the end of the scan.
    public var stationStartCountsPerSecond: Double
    public var stationEndCountsPerSecond: Double?
}
