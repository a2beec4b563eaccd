import Foundation

/// A small deterministic generator (SplitMix64), so that a scenario and a seed give
/// the same run every time.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal (Box-Muller).
    public mutating func gaussian() -> Double {
        let u1 = max(uniform(), 1e-300)
        let u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Poisson-distributed count with mean `lambda`: exact (Knuth) for small means,
    /// normal approximation above 50, which is well inside a simulator's needs.
    public mutating func poisson(_ lambda: Double) -> UInt64 {
        guard lambda > 0 else { return 0 }
        if lambda < 50 {
            let limit = Foundation.exp(-lambda)
            var k: UInt64 = 0
            var p = uniform()
            while p > limit {
                k += 1
                p *= uniform()
            }
            return k
        }
        let x = lambda + lambda.squareRoot() * gaussian()
        return UInt64(max(0, x.rounded()))
    }
}
