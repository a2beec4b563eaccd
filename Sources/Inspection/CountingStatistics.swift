import Foundation

/// ISO 11929-style counting statistics for a gross count rate against a background
/// count rate (`docs/domain.md`, Counting statistics). Rates in counts per second,
/// times in seconds.
public enum CountingStatistics {
    /// The one-sided standard normal quantile k for a significance level α (k(0.05) = 1.645).
    public static func quantile(alpha: Double) -> Double {
        inverseNormal(1 - alpha)
    }

    /// The per-point α that keeps the container-level false-alarm rate at `alpha` over `points`.
    public static func pointAlpha(_ alpha: Double, points: Int, correction: ProcedureProfile.MultipleComparison) -> Double {
        let n = Double(max(1, points))
        switch correction {
        case .sidak: return 1 - pow(1 - alpha, 1 / n)
        case .bonferroni: return alpha / n
        case .none: return alpha
        }
    }

    /// Net rate and its standard uncertainty: ρn = ρg − ρ0, u² = ρg/tg + ρ0/t0.
    public static func net(gross: Double, grossSeconds: Double, background: Double, backgroundSeconds: Double) -> (rate: Double, uncertainty: Double) {
        (gross - background, (gross / grossSeconds + background / backgroundSeconds).squareRoot())
    }

    /// Decision threshold ρn* = k·√(ρ0/tg + ρ0/t0): a net rate above it is "detected".
    ///
    /// With `poissonSkew`, plus the Cornish–Fisher skew term of Poisson counts, (k² − 1)/6
    /// counts over tg. Counts are skewed to the high side; at a few tens of counts per
    /// point and the k ≈ 3.2 a Šidák correction over the points asks for, the normal
    /// approximation alone lets 2.4 times α through (demo profile, 32 counts per point:
    /// 2.3 % of clean containers "anomalous" at a container α of 1 %, found by the fault
    /// soak); with the term, 1.1 %. At the hundreds of counts of a real dwell the term is
    /// a few per cent of ρn*.
    public static func decisionThreshold(background: Double, grossSeconds: Double, backgroundSeconds: Double, k: Double,
                                         poissonSkew: Bool = false) -> Double {
        let normal = k * (background / grossSeconds + background / backgroundSeconds).squareRoot()
        return poissonSkew ? normal + max(0, k * k - 1) / 6 / grossSeconds : normal
    }

    /// Detection limit ρn#, the solution of ρn# = ρn* + k·√((ρn# + ρ0)/tg + ρ0/t0).
    public static func detectionLimit(background: Double, grossSeconds: Double, backgroundSeconds: Double, k: Double,
                                      poissonSkew: Bool = false) -> Double {
        let threshold = decisionThreshold(background: background, grossSeconds: grossSeconds, backgroundSeconds: backgroundSeconds, k: k,
                                          poissonSkew: poissonSkew)
        var x = 2 * threshold
        for _ in 0..<100 {
            let next = threshold + k * ((x + background) / grossSeconds + background / backgroundSeconds).squareRoot()
            if abs(next - x) < 1e-12 * max(1, x) { return next }
            x = next
        }
        return x
    }

    /// Mean and sample standard deviation.
    public static func meanAndDeviation(_ values: [Double]) -> (mean: Double, deviation: Double) {
        guard !values.isEmpty else { return (0, 0) }
        let mean = values.reduce(0, +) / Double(values.count)
        guard values.count > 1 else { return (mean, 0) }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return (mean, variance.squareRoot())
    }

    /// Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9).
    static func inverseNormal(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                 -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                 -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        let p = min(max(p, 1e-300), 1 - 1e-16)
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low {
            let q = (-2 * log(1 - p)).squareRoot()
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let q = p - 0.5
        let r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}
