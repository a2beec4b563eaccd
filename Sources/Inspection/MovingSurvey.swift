import Foundation
import RobotControl

/// The moving survey (issue 14): the robot drives along each face at each height with the
/// lift holding, and the detector's count samples (`CountSample`, each placed where the
/// probe was) are summed over each grid point's cell, the stretch of the row nearer to it
/// than to its neighbours. Each cell's counts are that point's first reading, screened by
/// rule 2's screen as a static one would be; every point it marks is then measured
/// standing, and that static re-measure decides (`docs/procedure.md` §10).
///
/// The speed follows from the profile's detection requirement and the background
/// measured before the survey: a cell of length ℓ counts for t = ℓ / v, and the screen
/// (k₁ over the plan's points) must mark a net of D with 95 % probability:
///
///     D·s·t − k₁·√(B·t) ≥ 1.645·√((B + D·s)·t)   ⇔   √t ≥ (k₁·√B + 1.645·√(B + D·s)) / (D·s)
///
/// with B the background count rate and s the sensitivity (counts per second per μSv/h).
public enum MovingSurvey {
    /// Speeds a profile may ask for: the chassis' firmware limit is 0.5 m/s.
    public static let allowedSpeeds: ClosedRange<Double> = 0.05...0.5
    /// The probe a profile is checked with before any detector is known (the simulator's
    /// and the standard instrument's 300 cps per μSv/h).
    public static let nominalSensitivity = 300.0
    /// The standard plan's largest point count (40 ft): the screen's k₁ at the profile check.
    public static let nominalPoints = 300

    /// The counting time a cell needs for the requirement, seconds.
    public static func cellSeconds(detection: Double, backgroundMicrosievertsPerHour b: Double, sensitivity s: Double,
                                   screeningK k: Double) -> Double {
        let background = max(b, 1e-6) * s
        let signal = detection * s
        let root = (k * background.squareRoot() + 1.645 * (background + signal).squareRoot()) / signal
        return root * root
    }

    /// The speed for a plan at a background: the profile's maximum, or slower where the
    /// cells need longer counting; `nil` when even the slowest allowed speed falls short.
    public static func speed(plan: ScanPlan, backgroundMicrosievertsPerHour b: Double, sensitivity: Double)
        -> (metresPerSecond: Double, cellSeconds: Double, cellMetres: Double)? {
        let profile = plan.profile
        guard let maximum = profile.surveyMaxSpeedMetresPerSecond, let detection = profile.surveyDetectionMicrosievertsPerHour,
              let settings = profile.decision else { return nil }
        let k = PlannedJudgement.Quantiles(profile: profile, settings: settings, points: plan.points.count).screening
        let cell = cellMetres(plan)
        let needed = cellSeconds(detection: detection, backgroundMicrosievertsPerHour: b, sensitivity: sensitivity, screeningK: k)
        let v = min(maximum, cell / needed)
        guard v >= allowedSpeeds.lowerBound else { return nil }
        return (v, cell / v, cell)
    }

    /// The longest cell of the plan: the grid's column spacing on its longest face.
    static func cellMetres(_ plan: ScanPlan) -> Double {
        var longest = 0.0
        for face in plan.profile.faces {
            let along = plan.points.filter { $0.face == face }.map(\.positionAlongFaceMetres).sorted()
            for (a, b) in zip(along, along.dropFirst()) where b - a > 1e-6 { longest = max(longest, b - a) }
        }
        return longest > 0 ? longest : plan.profile.maxColumnSpacingMetres
    }

    /// Why a moving survey cannot meet its requirement at a background, with the numbers,
    /// or `nil` when it can.
    public static func problem(profile: ProcedureProfile, backgroundMicrosievertsPerHour b: Double, sensitivity: Double,
                               detection: Double, points: Int = nominalPoints) -> String? {
        guard let settings = profile.decision else { return nil }
        let k = PlannedJudgement.Quantiles(profile: profile, settings: settings, points: points).screening
        let needed = cellSeconds(detection: detection, backgroundMicrosievertsPerHour: b, sensitivity: sensitivity, screeningK: k)
        let cell = profile.maxColumnSpacingMetres
        guard cell / needed < allowedSpeeds.lowerBound else { return nil }
        return String(format: "a moving survey cannot mark +%.3f μSv/h (95 %%) at a background of %.3f μSv/h: a %.2f m cell needs %.1f s "
                      + "of counting, %.3f m/s, below the slowest allowed %.2f m/s; ask for a larger detectionMicrosievertsPerHour or "
                      + "survey standing (mode: static)", detection, b, cell, needed, cell / needed, allowedSpeeds.lowerBound)
    }

    /// Sums a row's count samples into its points' cells. `row` is the row's points in plan
    /// order (one face, one height); the samples give the robot's reference point, compared
    /// with the points' stands, and the lift plus the mount's `up` with the row's height.
    /// Returns, per point index, the counts, the counting seconds and whether the detector
    /// overloaded, for the cells the samples covered at the row's height (±5 cm).
    public static func bin(_ samples: [CountSample], row: [PlanPoint], mount: ProbeMount?) -> [Int: (counts: UInt32, seconds: Double, overload: Bool)] {
        guard let first = row.first, let last = row.last else { return [:] }
        // The row's axis through its stands (the robot's reference point at each point).
        let dx = last.standX - first.standX, dy = last.standY - first.standY
        let length = (dx * dx + dy * dy).squareRoot()
        let heading = (first.headingDegrees ?? 0) * .pi / 180
        let axis = length > 1e-6 ? (dx / length, dy / length) : (cos(heading), sin(heading))
        let along = row.map { ($0.standX - first.standX) * axis.0 + ($0.standY - first.standY) * axis.1 }
        let half = zip(along, along.dropFirst()).map { abs($1 - $0) / 2 }.max() ?? 0.25
        let up = mount?.upMetres ?? 0
        var sums: [Int: (counts: UInt32, seconds: Double, overload: Bool)] = [:]
        for (a, b) in zip(samples, samples.dropFirst()) where b.continuous {
            let ms = b.timeBaseMilliseconds &- a.timeBaseMilliseconds
            guard ms > 0, ms < 2_000 else { continue }
            guard abs((a.liftMetres + b.liftMetres) / 2 + up - first.heightMetres) <= 0.05 else { continue }
            let x = (a.xMetres + b.xMetres) / 2, y = (a.yMetres + b.yMetres) / 2
            let s = (x - first.standX) * axis.0 + (y - first.standY) * axis.1
            let across = abs(-(x - first.standX) * axis.1 + (y - first.standY) * axis.0)
            guard across <= 0.10, let nearest = along.indices.min(by: { abs(along[$0] - s) < abs(along[$1] - s) }),
                  abs(along[nearest] - s) <= half + 0.01 else { continue }
            let index = row[nearest].index
            var sum = sums[index] ?? (0, 0, false)
            sum.counts &+= b.counts &- a.counts
            sum.seconds += Double(ms) / 1000
            sum.overload = sum.overload || b.overload
            sums[index] = sum
        }
        return sums
    }
}
