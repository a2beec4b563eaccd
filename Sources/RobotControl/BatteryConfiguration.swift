/// The robot's battery and what the robot draws from it: the figures a scan's energy
/// budget is estimated with (`Inspection.BatteryBudget`), and the charge below which a
/// running scan stops.
///
/// The defaults are a 48 V, 40 Ah pack (about 1 900 Wh) on a robot that draws 150 W
/// standing (computer, detector, drives energised), 600 J per metre driven, 2 000 J per
/// metre the lift rises (about 60 kg of mast and probe at 30 % efficiency) and 5 J per
/// degree turned. A site measures its robot's figures once (a scan's charge before and
/// after, `robotctl status`) and sets them in robotd's `battery:` section.
public struct BatteryConfiguration: Sendable, Equatable, Codable {
    public var capacityWattHours = 1900.0
    public var idleWatts = 150.0
    public var driveJoulesPerMetre = 600.0
    public var liftJoulesPerMetre = 2000.0
    public var turnJoulesPerDegree = 5.0
    /// A running scan stops, resumable, when the charge falls below this; a scan starts
    /// only if its estimate leaves at least this much at its end.
    public var stopPercent = 15.0
    /// The estimate (which already allows for re-measures) is multiplied by this, for a
    /// robot that draws more than the figures above (a site's measured figures off by
    /// about two standard deviations of 8 %; `BatteryBench` shows what it covers).
    public var marginFactor = 1.15
    /// No battery check at all (a robot on a tether or a bench supply).
    public var checked = true

    public init() {}

    public func problems() -> [String] {
        var found: [String] = []
        for (name, value, range) in [("capacityWattHours", capacityWattHours, 10.0...100_000), ("idleWatts", idleWatts, 0.0...5000),
                                     ("driveJoulesPerMetre", driveJoulesPerMetre, 0.0...100_000),
                                     ("liftJoulesPerMetre", liftJoulesPerMetre, 0.0...100_000),
                                     ("turnJoulesPerDegree", turnJoulesPerDegree, 0.0...10_000), ("stopPercent", stopPercent, 1.0...90),
                                     ("marginFactor", marginFactor, 1.0...5)] where !(value.isFinite && range.contains(value)) {
            found.append("battery.\(name) \(value) must be \(range.lowerBound) to \(range.upperBound)")
        }
        return found
    }
}

/// The robot's standing draw from the battery current (protocol 1.1 W7.9): each new
/// sample taken while neither axis moves (and no charger is on) goes into an average with
/// a 10-sample memory (10 s at the 1 s poll). The estimate a scan starts on
/// (`Inspection.BatteryBudget`) is scaled by it over the configured `idleWatts`.
struct StandingDraw {
    private var lastSequence: UInt64 = 0
    private var average = 0.0
    private var samples = 0

    mutating func add(watts: Double, sequence: UInt64, standing: Bool) {
        guard sequence != lastSequence else { return }
        lastSequence = sequence
        guard standing, watts.isFinite else { return }
        samples += 1
        average += (watts - average) / Double(min(samples, 10))
    }

    /// The average, once 5 samples are in.
    var watts: Double? { samples >= 5 ? average : nil }
}
