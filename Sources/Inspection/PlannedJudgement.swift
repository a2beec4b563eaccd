import Foundation

/// Planned decision rule 2 (`docs/procedure.md`): the background modelled at the
/// container, two-stage "anomalous" with a re-measure, a three-zone "exceeds" against the
/// station background with a pooled extended count, and "inconclusive" when the
/// background moved more than the model carries. The executor asks its `Screener` which points
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
}

extension Double {
    /// √(self² + other²).
    func hypot(_ other: Double) -> Double { Foundation.hypot(self, other) }
}
