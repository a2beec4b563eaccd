import Foundation

/// Planned decision rule 2 (`docs/procedure.md`): the background modelled at the
/// container, two-stage "anomalous" with a re-measure, a three-zone "exceeds" against the
/// station background with a pooled extended count, and "inconclusive" when the
/// background moved more than the model carries. The executor asks `screen` which points
/// to re-measure, with the same code the verdict is computed by.
public enum PlannedJudgement {
    /// Why a point is re-measured.
    public enum RemeasureReason: String, Sendable, Equatable {
        /// Its first reading is in the uncertain zone of the limit, or above it.
        case nearLimit
        /// Its first reading stands out from the modelled background.
        case candidate
    }

    /// The quantiles the rule uses for `points` judged points.
    struct Quantiles {
        var screeningAlpha: Double
        var screening: Double
        var confirmation: Double
        var singleStage: Double
        var beta: Double
        var betaProbability: Double

        init(profile: ProcedureProfile, settings: DecisionSettings, points: Int) {
            let n = Double(max(1, points))
            screeningAlpha = min(0.5, settings.expectedCandidates / n)
            screening = CountingStatistics.quantile(alpha: screeningAlpha)
            confirmation = CountingStatistics.quantile(alpha: min(0.5, profile.alpha / settings.expectedCandidates))
            singleStage = CountingStatistics.quantile(alpha: CountingStatistics.pointAlpha(profile.alpha, points: points, correction: .sidak))
            beta = CountingStatistics.quantile(alpha: settings.beta)
            betaProbability = settings.beta
        }
    }

    /// The station background: start and end sets as rates, interpolated in time.
    struct Station {
        var startRate: Double
        var startSeconds: Double
        var startTime: Double
        var end: (rate: Double, seconds: Double, time: Double)?

        init?(_ readings: [DoseReading], perSet: Int) {
            let start = Array(readings.prefix(perSet))
            let end = Array(readings.dropFirst(perSet))
            guard let s = Self.summary(start) else { return nil }
            (startRate, startSeconds, startTime) = s
            self.end = Self.summary(end)
        }

        static func summary(_ set: [DoseReading]) -> (rate: Double, seconds: Double, time: Double)? {
            let seconds = set.reduce(0) { $0 + $1.seconds }
            guard !set.isEmpty, seconds > 0 else { return nil }
            let time = set.map(\.takenAt.timeIntervalSince1970).reduce(0, +) / Double(set.count)
            return (Double(set.reduce(0) { $0 + Int($1.counts) }) / seconds, seconds, time)
        }

        /// Rate and its variance at a time (seconds since 1970): interpolated between the
        /// sets, with the variance of the interpolation ((1 − f)²·u²start + f²·u²end).
        func at(_ time: Double) -> (rate: Double, variance: Double) {
            guard let e = end, e.time > startTime else { return (startRate, startRate / startSeconds) }
            let f = min(1, max(0, (time - startTime) / (e.time - startTime)))
            return (startRate + f * (e.rate - startRate),
                    (1 - f) * (1 - f) * startRate / startSeconds + f * f * e.rate / e.seconds)
        }

        /// The straight line's own error as a fraction of the background: a drift that is
        /// not a straight line departs from it by up to about |Δ|/√12.
        var driftFraction: Double { end.map { abs($0.rate - startRate) / 12.squareRoot() / max(startRate, 1e-9) } ?? 0 }
    }

    /// One point's first reading set as the fit and the tests see it.
    struct PointData {
        var index: Int
        var counts: Double
        var seconds: Double
        var time: Double
        var row: Int
        var shape: Double
        var rate: Double { counts / max(seconds, 1e-9) }

        init?(_ index: Int, _ readings: [DoseReading], row: Int, shape: Double) {
            guard !readings.isEmpty else { return nil }
            self.index = index
            self.row = row
            counts = Double(readings.reduce(0) { $0 + Int($1.counts) })
            seconds = readings.reduce(0) { $0 + $1.seconds }
            time = readings.map(\.takenAt.timeIntervalSince1970).reduce(0, +) / Double(readings.count)
            self.shape = shape
        }
    }

    /// The significance of a gross rate over `seconds` against a modelled background rate:
    /// (gross − b − skew)/σ, with σ² = b/t + (ε·b)² + u²(b). The skew term is Poisson's
    /// Cornish–Fisher correction at quantile k ((k² − 1)/6 counts over t).
    static func significance(gross: Double, seconds: Double, background b: Double, modelVariance: Double, residualFraction: Double,
                             k: Double) -> Double {
        let sigma = (b / seconds + pow(residualFraction * b, 2) + modelVariance).squareRoot()
        let skew = max(0, k * k - 1) / 6 / seconds
        return (gross - b - skew) / max(sigma, 1e-12)
    }

    /// Chooses the points to re-measure while the scan runs: the point just measured, from
    /// the start background and the points measured before it (its first reading near or
    /// above the limit, or standing out from the background model fitted to the points so
    /// far). A pure function of those readings, so a resumed scan decides as an
    /// uninterrupted one would; the model is refitted every `refitEvery` points (the fit
    /// for point i uses the points before the last multiple of `refitEvery`).
    public final class Screener: @unchecked Sendable {
        public let plan: ScanPlan
        public let settings: DecisionSettings
        public let instrument: InstrumentRecord
        static let refitEvery = 5
        private let shapes: [Double]
        private let rows: Int
        private let quantiles: Quantiles
        private var cachedFit: (cutoff: Int, start: Double, model: BackgroundModel)?
        private let lock = NSLock()

        public init(plan: ScanPlan, settings: DecisionSettings, instrument: InstrumentRecord) {
            self.plan = plan
            self.settings = settings
            self.instrument = instrument
            shapes = plan.points.map { BackgroundGeometry.shapeFactor($0, plan: plan) }
            rows = (plan.points.map(\.row).max() ?? 0) + 1
            quantiles = Quantiles(profile: plan.profile, settings: settings, points: plan.points.count)
        }

        /// Confirmed exceedances after which no more points are re-measured for the limit:
        /// the container's verdict is settled, and a container of NORM above the limit
        /// would otherwise be measured twice over.
        public static let settledAfterExceedances = 3

        /// Why point `index` should be re-measured now, or `nil`. `remeasures` are those
        /// taken so far (points before `index` only count).
        public func reason(background: [DoseReading], points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]],
                           index: Int) -> RemeasureReason? {
            let profile = plan.profile
            guard profile.remeasureCount > 0, index < plan.points.count,
                  let station = Station(Array(background.prefix(profile.backgroundReadings)), perSet: profile.backgroundReadings),
                  let data = PointData(index, points[index] ?? [], row: plan.points[index].row, shape: shapes[index])
            else { return nil }
            let toDose = instrument.calibrationFactor / instrument.sensitivityCountsPerSecondPerMicrosievertPerHour
            if (points[index] ?? []).contains(where: \.overload) { return .nearLimit }
            // Near the limit: against the start background, with room for a background that
            // falls by up to the drift capacity before the end.
            let b = station.startRate
            let net = (data.rate - b) * toDose
            let countingU: Double = (data.rate / data.seconds + b / station.startSeconds).squareRoot() * toDose
            let u = countingU.hypot(settings.calibrationRelativeUncertainty * max(net, 0))
            if net > profile.limitAboveBackground - settings.exceedsZoneK * u - settings.driftCapacityFraction * b * toDose,
               confirmedExceedances(points: points, remeasures: remeasures, before: index, station: b, toDose: toDose) < Self.settledAfterExceedances {
                return .nearLimit
            }
            // Too few points to fit: the station level itself (a source in the first few
            // columns behind a heavily shadowed wall may then go unscreened; the single-stage
            // test of the verdict still sees a strong one).
            var expected = b
            var modelVariance = b / station.startSeconds
            if let model = fit(points: points, before: index, station: b) {
                let m = model.rate(station: b, row: data.row, shape: data.shape)
                expected = m.value
                modelVariance += m.uncertainty * m.uncertainty
            }
            let z = significance(gross: data.rate, seconds: data.seconds, background: expected, modelVariance: modelVariance,
                                 residualFraction: settings.modelResidualFraction, k: quantiles.screening)
            return z > quantiles.screening ? .candidate : nil
        }

        /// Points before `index` whose first reading and re-measure pooled are above the limit.
        private func confirmedExceedances(points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]], before index: Int,
                                          station b: Double, toDose: Double) -> Int {
            var count = 0
            for (i, again) in remeasures where i < index && !again.isEmpty {
                let all = (points[i] ?? []) + again
                let seconds = all.reduce(0) { $0 + $1.seconds }
                let rate = Double(all.reduce(0) { $0 + Int($1.counts) }) / max(seconds, 1e-9)
                if all.contains(where: \.overload) || (rate - b) * toDose > plan.profile.limitAboveBackground { count += 1 }
            }
            return count
        }

        private func fit(points: [Int: [DoseReading]], before index: Int, station b: Double) -> BackgroundModel? {
            let cutoff = index / Self.refitEvery * Self.refitEvery
            if let cached = lock.withLock({ cachedFit }), cached.cutoff == cutoff, cached.start == b {
                return cached.model
            }
            let samples = plan.points.prefix(cutoff).compactMap { p -> BackgroundGeometry.Sample? in
                PointData(p.index, points[p.index] ?? [], row: p.row, shape: shapes[p.index])
                    .map { .init(gross: $0.rate, seconds: $0.seconds, station: b, row: $0.row, shape: $0.shape) }
            }
            guard samples.count >= settings.minimumFitPoints,
                  let model = BackgroundGeometry.fit(samples, rows: rows, residualFraction: settings.modelResidualFraction)
            else { return nil }
            lock.withLock { cachedFit = (cutoff, b, model) }
            return model
        }
    }
}

extension Double {
    /// √(self² + other²).
    func hypot(_ other: Double) -> Double { Foundation.hypot(self, other) }
}
