import RobotSimulator
import Foundation

/// Clopper–Pearson intervals for the bench's rates.
enum Binomial {
    /// The 95 % Clopper–Pearson interval for `events` in `trials`.
    static func interval(_ events: Int, _ trials: Int, confidence: Double = 0.95) -> (low: Double, high: Double) {
        guard trials > 0 else { return (0, 1) }
        let tail = (1 - confidence) / 2
        let n = Double(trials), k = Double(events)
        let low = events == 0 ? 0 : betaQuantile(tail, a: k, b: n - k + 1)
        let high = events == trials ? 1 : betaQuantile(1 - tail, a: k + 1, b: n - k)
        return (low, high)
    }

    /// The p-quantile of Beta(a, b), by bisection on the regularised incomplete beta.
    static func betaQuantile(_ p: Double, a: Double, b: Double) -> Double {
        var low = 0.0, high = 1.0
        for _ in 0..<100 {
            let middle = (low + high) / 2
            if incompleteBeta(middle, a: a, b: b) < p { low = middle } else { high = middle }
        }
        return (low + high) / 2
    }

    /// I_x(a, b) by its continued fraction (modified Lentz).
    static func incompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logFront: Double = logBeta + a * log(x) + b * log(1 - x)
        if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(1 - x, a: b, b: a) }
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var f = d
        for m in 1...500 {
            let m = Double(m)
            let evenDenominator: Double = (a + 2 * m - 1) * (a + 2 * m)
            var numerator: Double = m * (b - m) * x / evenDenominator
            d = 1 + numerator * d; if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            f *= d * c
            let oddDenominator: Double = (a + 2 * m) * (a + 2 * m + 1)
            numerator = -(a + m) * (a + b + m) * x / oddDenominator
            d = 1 + numerator * d; if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            f *= step
            if abs(step - 1) < 1e-12 { break }
        }
        return exp(logFront) * f / a
    }
}

/// Exact Poisson draws for any mean: a Poisson of mean λ is the sum of Poissons of
/// smaller means, each drawn exactly (Knuth). The simulator's own generator switches to a
/// normal approximation above 50, which loses the skew the decision rule must carry.
struct ExactPoisson {
    var random: SeededRandom

    mutating func draw(_ lambda: Double) -> UInt32 {
        var remaining = lambda
        var total: UInt32 = 0
        while remaining > 0 {
            let part = min(remaining, 30)
            remaining -= part
            let limit = exp(-part)
            var p = random.uniform()
            while p > limit {
                total += 1
                p *= random.uniform()
            }
        }
        return total
    }
}

