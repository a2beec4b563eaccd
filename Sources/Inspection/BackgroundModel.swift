import Foundation

/// The background a probe sees beside the container, as planned rule 2 models it
/// (`docs/procedure.md`, "The background at the container").
///
/// The station background B(t) is measured 10 m away from any cargo, before and after the
/// survey, and interpolated in time. At the wall the probe sees less of the ground and sky
/// (the container's body and cargo shadow them) and, with NORM cargo, more of the cargo.
/// Both scale with how much of the probe's view the container fills, which the plan's
/// geometry gives: the shape factor s, the fraction of the probe's view of the ground that
/// the container's box hides (0 far away, close to 1 at 0.10 m from the middle of a long wall,
/// less at the corners). The expected gross rate at point i is
///
///     b_i = B(t_i) · (g_row(i) − h·s_i)
///
/// with g_row the level at the container relative to the station for each height row of
/// the plan (a site offset, and the height profile: near the ground the probe sees the
/// ground differently) and h the shadowing amplitude, all fitted to the container's own
/// readings by robust weighted least squares. h is held at or above 0: the fit may take
/// away background the container hides, never add excess the cargo brings (NORM, or a
/// container full of contaminated scrap), so an excess is never absorbed into the shape.
/// The levels are free; a container-level test compares their mean with the station
/// (`PlannedJudgement`), so a uniform excess is caught there.
public struct BackgroundModel: Sendable, Equatable, Codable {
    /// The level at the container relative to the station background, one per height row
    /// of the plan (the ground's share of the view changes with height), fitted.
    public var rowLevels: [Double]
    /// The model's mean level over the points relative to the station background (the site
    /// level the container stands in, shadowing included), and its standard uncertainty.
    public var siteLevel: Double
    public var siteLevelUncertainty: Double
    /// Shadowing amplitude (the fraction of the background that would be removed if the
    /// container hid the whole ground), and its standard uncertainty.
    public var shadowing: Double
    public var shadowingUncertainty: Double
    /// Points the fit used, and those it set aside as outliers (weight below 0.1).
    public var pointsFitted: Int
    public var outliers: Int
    /// Covariance of (row levels…, shadowing), row-major.
    var covariance: [Double]

    /// The model's multiplier of the station background at a point: level(row) − h·s.
    func scale(row: Int, shape: Double) -> Double {
        level(row) - shadowing * shape
    }

    /// A row the fit had no point of takes the site level.
    private func level(_ row: Int) -> Double { row >= 0 && row < rowLevels.count ? rowLevels[row] : siteLevel + shadowing * 0.5 }

    /// The modelled gross rate at a point whose station background is `station` (counts per
    /// second), with its standard uncertainty from the fit alone.
    func rate(station: Double, row: Int, shape: Double) -> (value: Double, uncertainty: Double) {
        let n = rowLevels.count + 1
        guard row >= 0, row < rowLevels.count, covariance.count == n * n else {
            return (station * scale(row: row, shape: shape), station * siteLevelUncertainty)
        }
        let h = n - 1
        let variance = covariance[row * n + row] - 2 * shape * covariance[row * n + h] + shape * shape * covariance[h * n + h]
        return (station * scale(row: row, shape: shape), station * max(0, variance).squareRoot())
    }

    /// The model that says "the station background, everywhere".
    static let station = BackgroundModel(rowLevels: [], siteLevel: 1, siteLevelUncertainty: 0, shadowing: 0, shadowingUncertainty: 0,
                                         pointsFitted: 0, outliers: 0, covariance: [])
}

/// The geometry and the fit behind `BackgroundModel`.
public enum BackgroundGeometry {
    /// The shape factor of a plan point's probe: the fraction of its view of the ground
    /// (the lower half space) that the container's box hides, Ω_below/2π, from the faces
    /// turned towards the probe, each a rectangle (closed form). Most of the background is
    /// the ground's; the sky's is mostly cosmic, which a container hardly stops.
    public static func shapeFactor(_ point: PlanPoint, plan: ScanPlan) -> Double {
        let size = plan.container.size
        let (a, c) = SourceLocalisation.local(point, size: size, standOff: plan.profile.standOffMetres)
        return shapeFactor(along: a, across: c, height: point.heightMetres, length: size.lengthMetres, width: size.widthMetres,
                           height: size.heightMetres)
    }

    /// Ω_below/2π of the box [0, L] × [0, W] × [0, H] from the point (a, c, z) outside it:
    /// the part of each seen face below the point's height (a box on the ground hides every
    /// downward ray that meets it before the ground).
    public static func shapeFactor(along a: Double, across c: Double, height z: Double, length: Double, width: Double,
                                   height boxHeight: Double) -> Double {
        var omega = 0.0
        let below = (0 - z, min(boxHeight, z) - z)
        // Each face the point is outside of is seen; opposite faces can never both be.
        if a < 0 { omega += rectangle(distance: -a, u: (0 - c, width - c), v: below) }
        if a > length { omega += rectangle(distance: a - length, u: (0 - c, width - c), v: below) }
        if c < 0 { omega += rectangle(distance: -c, u: (0 - a, length - a), v: below) }
        if c > width { omega += rectangle(distance: c - width, u: (0 - a, length - a), v: below) }
        if z > boxHeight { omega += rectangle(distance: z - boxHeight, u: (0 - a, length - a), v: (0 - c, width - c)) }
        return min(1, max(0, omega / (2 * .pi)))
    }

    /// Solid angle of the rectangle [u0, u1] × [v0, v1] in a plane at `distance` from the
    /// point, with (u, v) measured from the foot of the perpendicular.
    static func rectangle(distance d: Double, u: (Double, Double), v: (Double, Double)) -> Double {
        func corner(_ x: Double, _ y: Double) -> Double { atan(x * y / (d * (x * x + y * y + d * d).squareRoot())) }
        return corner(u.1, v.1) - corner(u.0, v.1) - corner(u.1, v.0) + corner(u.0, v.0)
    }

    /// One point's data for the fit: gross rate and seconds, the station background rate
    /// interpolated to its time, its height row and its shape factor.
    struct Sample {
        var gross: Double
        var seconds: Double
        var station: Double
        var row: Int
        var shape: Double
    }

    /// Prior of the shadowing amplitude h and its standard deviation (a 40 ft box of loaded
    /// cargo, as the simulator's geometry gives it, is about 1.4).
    static let shadowingPrior = 0.8
    static let shadowingPriorSD = 0.8

    /// Fits the row levels and h by iteratively reweighted least squares (Tukey's biweight
    /// on the standardised residual, c = 4.685), with a weak prior on h and h held at or
    /// above 0. `residualFraction` is the model's own relative error, added to each point's
    /// counting variance.
    static func fit(_ samples: [Sample], rows: Int, residualFraction: Double) -> BackgroundModel? {
        guard samples.count >= 3, rows > 0 else { return nil }
        let n = rows + 1
        let present = Set(samples.map(\.row).filter { $0 >= 0 && $0 < rows })
        guard !present.isEmpty else { return nil }
        var levels = [Double](repeating: 1, count: rows)
        var h = 0.0
        var robustness = [Double](repeating: 1, count: samples.count)
        var inverse = [Double](repeating: 0, count: n * n)
        func expected(_ s: Sample) -> Double { max(s.station * (levels[s.row] - h * s.shape), 1e-9) }
        for iteration in 0..<12 {
            // Normal equations of gross ≈ Σ level_r·[row = r]·B − h·B·s.
            var normal = [Double](repeating: 0, count: n * n)
            var right = [Double](repeating: 0, count: n)
            for (i, s) in samples.enumerated() where s.row >= 0 && s.row < rows {
                let e = expected(s)
                let w = robustness[i] / (e / s.seconds + pow(residualFraction * e, 2))
                let x = s.station, y = -s.station * s.shape
                normal[s.row * n + s.row] += w * x * x
                normal[s.row * n + rows] += w * x * y
                normal[rows * n + s.row] += w * x * y
                normal[rows * n + rows] += w * y * y
                right[s.row] += w * x * s.gross
                right[rows] += w * y * s.gross
            }
            // A weak prior on h: one stand-off gives s a narrow range, so without shadowing
            // the data hardly fix h; the prior keeps it, and its uncertainty, physical.
            normal[rows * n + rows] += 1 / (shadowingPriorSD * shadowingPriorSD)
            right[rows] += shadowingPrior / (shadowingPriorSD * shadowingPriorSD)
            for r in 0..<rows where !present.contains(r) { normal[r * n + r] = 1 }
            guard let solved = invert(normal, n) else { return nil }
            var solution = (0..<n).map { r in (0..<n).reduce(0) { $0 + solved[r * n + $1] * right[$1] } }
            if solution[rows] < 0 {
                // h held at 0: each row level on its own; the covariance keeps the levels'
                // share of h's uncertainty (the unconstrained inverse), which is conservative.
                for r in present {
                    let a = normal[r * n + r]
                    solution[r] = a > 0 ? right[r] / a : 1
                }
                solution[rows] = 0
            }
            inverse = solved
            let converged = abs(solution[rows] - h) < 1e-7 && zip(levels, solution).allSatisfy { abs($0 - $1) < 1e-7 }
            for r in 0..<rows { levels[r] = present.contains(r) ? solution[r] : .nan }
            h = solution[rows]
            for r in 0..<rows where !present.contains(r) { levels[r] = .nan }
            let filled = levels.map { $0.isNaN ? 1 : $0 }
            // Robustness weights from the standardised residuals: a source's points weigh nothing.
            for (i, s) in samples.enumerated() where s.row >= 0 && s.row < rows {
                let e = max(s.station * (filled[s.row] - h * s.shape), 1e-9)
                let sigma = (e / s.seconds + pow(residualFraction * e, 2)).squareRoot()
                let u = (s.gross - e) / (4.685 * sigma)
                robustness[i] = abs(u) < 1 ? pow(1 - u * u, 2) : 0
            }
            levels = filled.enumerated().map { present.contains($0.offset) ? $0.element : .nan }
            if converged && iteration > 1 { break }
        }
        // The site level: the model's mean multiplier at the points (not its intercept at
        // s = 0, which the narrow range of s at one stand-off leaves poorly determined),
        // and its variance through the covariance.
        var weights = [Double](repeating: 0, count: n)
        let counted = samples.filter { present.contains($0.row) }
        for s in counted {
            weights[s.row] += 1 / Double(counted.count)
            weights[rows] -= s.shape / Double(counted.count)
        }
        let site = (0..<rows).reduce(0) { $0 + (levels[$1].isNaN ? 0 : weights[$1] * levels[$1]) } + weights[rows] * h
        var siteVariance = 0.0
        for a in 0..<n { for b in 0..<n { siteVariance += weights[a] * inverse[a * n + b] * weights[b] } }
        let kept = robustness.filter { $0 >= 0.1 }.count
        // JSON has no NaN: a row without points takes the site level.
        levels = levels.map { $0.isNaN ? site + h * 0.5 : $0 }
        return BackgroundModel(rowLevels: levels, siteLevel: site, siteLevelUncertainty: max(0, siteVariance).squareRoot(), shadowing: h,
                               shadowingUncertainty: max(0, inverse[rows * n + rows]).squareRoot(), pointsFitted: kept,
                               outliers: samples.count - kept, covariance: inverse)
    }

    /// The inverse of an n × n matrix (Gauss–Jordan with partial pivoting), or `nil` if singular.
    static func invert(_ matrix: [Double], _ n: Int) -> [Double]? {
        var a = matrix
        var inverse = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inverse[i * n + i] = 1 }
        for column in 0..<n {
            guard let pivot = (column..<n).max(by: { abs(a[$0 * n + column]) < abs(a[$1 * n + column]) }),
                  abs(a[pivot * n + column]) > 1e-300 else { return nil }
            if pivot != column {
                for k in 0..<n {
                    a.swapAt(pivot * n + k, column * n + k)
                    inverse.swapAt(pivot * n + k, column * n + k)
                }
            }
            let p = a[column * n + column]
            for k in 0..<n {
                a[column * n + k] /= p
                inverse[column * n + k] /= p
            }
            for row in 0..<n where row != column {
                let f = a[row * n + column]
                guard f != 0 else { continue }
                for k in 0..<n {
                    a[row * n + k] -= f * a[column * n + k]
                    inverse[row * n + k] -= f * inverse[column * n + k]
                }
            }
        }
        return inverse
    }

    /// The fit of noise-free ratios to the station background (for `VerdictBench --explain`).
    public static func explainFit(_ points: [(row: Int, shape: Double, ratio: Double)]) -> BackgroundModel {
        let rows = (points.map(\.row).max() ?? 0) + 1
        return fit(points.map { Sample(gross: $0.ratio * 1e6, seconds: 1e6, station: 1e6, row: $0.row, shape: $0.shape) }, rows: rows,
                   residualFraction: 0.01) ?? .station
    }
}
