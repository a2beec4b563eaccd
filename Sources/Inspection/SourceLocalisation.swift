import Foundation

/// Where a source most likely sits, from the grid of net dose rates.
public struct SourceEstimate: Sendable, Equatable, Codable {
    /// The face to open: the wall nearest the estimated source.
    public var face: ProcedureProfile.Face
    /// From the door end along the container, from the left wall across it, and above the floor (metres).
    public var alongMetres: Double
    public var acrossMetres: Double
    public var heightMetres: Double
    /// Depth behind the face's wall.
    public var depthBehindFaceMetres: Double
    /// Half-widths of the region that fits about as well (Δχ² ≤ 3.5), metres.
    public var alongUncertaintyMetres: Double
    public var acrossUncertaintyMetres: Double
    public var heightUncertaintyMetres: Double
    /// Activity as an unshielded Cs-137 equivalent (MBq): a lower bound, since the cargo
    /// and the wall attenuate what the probe sees.
    public var equivalentCs137MBq: Double
    /// Rule 2: the best fit lies outside the container's walls (a source next door, or on
    /// the outer surface).
    public var outsideContainer: Bool?
}

/// Fits an unshielded point source, net = A / r², to the net dose rates by weighted
/// least squares over a lattice of positions inside the container (A is solved in
/// closed form at each position). Attenuation is left out, so activity is a lower
/// bound and depth is rough; the position along the wall and the height are what
/// officers need to know where to open.
public enum SourceLocalisation {
    public static func estimate(plan: ScanPlan, verdict: Verdict, step: Double = 0.2) -> SourceEstimate? {
        if verdict.rule != nil { return hotSpots(plan: plan, verdict: verdict, step: step).first }
        let size = plan.container.size
        let s = plan.profile.standOffMetres
        // Probe positions in container coordinates, with each point's net and weight.
        var samples: [Sample] = []
        for j in verdict.points {
            let p = plan.points[j.pointIndex]
            let (a, c) = local(p, size: size, standOff: s)
            samples.append(Sample(a: a, c: c, h: p.heightMetres, y: j.net, w: 1 / max(j.netUncertainty * j.netUncertainty, 1e-8)))
        }
        let significant = verdict.points.filter { $0.net > 3 * $0.netUncertainty }.count
        guard significant >= 2, samples.count >= 4 else { return nil }
        return fit(samples, plan: plan, region: (0, size.lengthMetres, 0, size.widthMetres), step: step, scaleByFitQuality: false)
    }

    /// Rule 2: every hot spot. Points judged "anomalous" or "exceeds" are grouped by face
    /// (neighbouring columns and rows); each group is fitted over the points within 2.5 m of
    /// its hottest one along the container (on every face), with the excess over the
    /// modelled background, on a lattice that reaches 2.6 m outside the box (a source next
    /// door shows as outside), and the region
    /// that fits about as well is widened by the fit's χ²/ndf. Strongest first; two groups
    /// that fit the same place count once.
    public static func hotSpots(plan: ScanPlan, verdict: Verdict, step: Double = 0.2) -> [SourceEstimate] {
        let size = plan.container.size
        let standOff = plan.profile.standOffMetres
        let flagged = verdict.points.filter { $0.outcome >= .anomalous }
        var groups: [[PointJudgement]] = []
        for j in flagged.sorted(by: { excess($0) > excess($1) }) {
            let p = plan.points[j.pointIndex]
            if let g = groups.firstIndex(where: { group in
                group.contains { other in
                    let q = plan.points[other.pointIndex]
                    return q.face == p.face && abs(q.column - p.column) <= 1 && abs(q.row - p.row) <= 1
                }
            }) {
                groups[g].append(j)
            } else {
                groups.append([j])
            }
        }
        var spots: [SourceEstimate] = []
        for group in groups {
            guard let peak = group.first else { continue }
            let (pa, pc) = local(plan.points[peak.pointIndex], size: size, standOff: standOff)
            // Every face's points within 2.5 m along the container (the far wall fixes the
            // depth), but not those of a group peaking more than 1 m away along it: a second
            // source is not this one's tail (a group on the far wall at the same place is the
            // same source seen from the other side).
            let others = Set(groups.filter { other in
                guard let top = other.first, top.pointIndex != peak.pointIndex else { return false }
                return abs(local(plan.points[top.pointIndex], size: size, standOff: standOff).0 - pa) > 1.0
            }.flatMap { $0.map(\.pointIndex) })
            var samples: [Sample] = []
            for j in verdict.points where !others.contains(j.pointIndex) {
                let p = plan.points[j.pointIndex]
                let (a, c) = local(p, size: size, standOff: standOff)
                guard abs(a - pa) <= 2.5 else { continue }
                samples.append(Sample(a: a, c: c, h: p.heightMetres, y: excess(j), w: 1 / max(j.netUncertainty * j.netUncertainty, 1e-8)))
            }
            guard samples.count >= 4,
                  let spot = fit(samples, plan: plan, region: (max(-outsideMetres, pa - 2.5), min(size.lengthMetres + outsideMetres, pa + 2.5),
                                                               -outsideMetres, size.widthMetres + outsideMetres),
                                 step: step, scaleByFitQuality: true, baseline: (verdict.rule?.settings.effectiveRevision ?? 1) >= 2)
            else { continue }
            if !spots.contains(where: { abs($0.alongMetres - spot.alongMetres) < 0.5 && abs($0.acrossMetres - spot.acrossMetres) < 0.5
                && abs($0.heightMetres - spot.heightMetres) < 0.5 }) {
                spots.append(spot)
            }
        }
        return spots
    }

    /// How far outside the walls the lattice of rule 2 reaches: a source in the next
    /// container, 2 m away, is found outside rather than pulled to the wall.
    static let outsideMetres = 2.6

    /// A point's excess over the background modelled there (rule 2), or its net (rule 1).
    static func excess(_ j: PointJudgement) -> Double { j.modelBackground.map { j.grossMean - $0 } ?? j.net }

    struct Sample {
        var a: Double, c: Double, h: Double, y: Double, w: Double
    }

    /// Cargo attenuation coefficients (per metre) rule 2 profiles over: the source's
    /// fall-off is steeper than 1/r² behind cargo, which otherwise pulls a deep source to
    /// a wall (0.075 cm²/g × 0.5 g/cm³ is 3.75 m⁻¹).
    static let attenuations: [Double] = [0, 1, 2, 4, 8]  // powers of e^(−L): the fit squares its way up

    /// With `baseline` (rule 2, revision 2) the excess may sit on a level below zero, fitted
    /// with the amplitude (A·f + C, C ≤ 0): the background model fitted to the whole
    /// container takes up part of a broad excess (a source next door raises a whole stretch
    /// of one face), which cuts its tails and pulls the fit to the wall.
    static func fit(_ samples: [Sample], plan: ScanPlan, region: (Double, Double, Double, Double), step: Double,
                    scaleByFitQuality: Bool, baseline: Bool = false) -> SourceEstimate? {
        let size = plan.container.size
        let box = (size.lengthMetres, size.widthMetres, size.heightMetres)
        let mus = scaleByFitQuality ? attenuations : [0]
        let syy = samples.reduce(0) { $0 + $1.w * $1.y * $1.y }
        let sw = samples.reduce(0) { $0 + $1.w }
        let sy = samples.reduce(0) { $0 + $1.w * $1.y }
        var fits: [(a: Double, c: Double, h: Double, chi2: Double, activity: Double)] = []
        var sfy = [Double](repeating: 0, count: mus.count), sff = sfy, sf = sfy
        var a = region.0 + step / 2
        while a < region.1 {
            var c = region.2 + step / 2
            while c < region.3 {
                var h = step / 2
                while h < size.heightMetres {
                    for m in mus.indices {
                        sfy[m] = 0
                        sff[m] = 0
                        sf[m] = 0
                    }
                    for x in samples {
                        let r2 = (x.a - a) * (x.a - a) + (x.c - c) * (x.c - c) + (x.h - h) * (x.h - h)
                        let inverse = 1 / max(r2, 0.01)
                        if mus.count == 1 {
                            sfy[0] += x.w * inverse * x.y
                            sff[0] += x.w * inverse * inverse
                            sf[0] += x.w * inverse
                            continue
                        }
                        // e^(−μL) for μ = 0, 1, 2, 4, 8 from one exponential, by squaring.
                        let inside = pathInside(from: (a, c, h), to: (x.a, x.c, x.h), box: box)
                        let once = exp(-inside)
                        var factor = 1.0
                        for m in mus.indices {
                            if m == 1 { factor = once } else if m > 1 { factor *= factor }
                            let f = factor * inverse
                            sfy[m] += x.w * f * x.y
                            sff[m] += x.w * f * f
                            sf[m] += x.w * f
                        }
                    }
                    // χ² at the best amplitude (closed form), profiled over the attenuation.
                    var best = (chi2: Double.infinity, amplitude: 0.0)
                    for m in mus.indices {
                        var amplitude = max(0, sfy[m] / max(sff[m], 1e-300))
                        var chi2 = syy - 2 * amplitude * sfy[m] + amplitude * amplitude * sff[m]
                        if baseline {
                            // Amplitude and level together (2 × 2 normal equations), kept
                            // only where the level comes out below zero and A above it.
                            let determinant = sff[m] * sw - sf[m] * sf[m]
                            if determinant > 1e-300 {
                                let a2 = (sfy[m] * sw - sf[m] * sy) / determinant
                                let c2 = (sff[m] * sy - sf[m] * sfy[m]) / determinant
                                if a2 > 0 && c2 < 0 {
                                    let chi2Level = syy - 2 * a2 * sfy[m] - 2 * c2 * sy + a2 * a2 * sff[m] + 2 * a2 * c2 * sf[m] + c2 * c2 * sw
                                    if chi2Level < chi2 { (amplitude, chi2) = (a2, chi2Level) }
                                }
                            }
                        }
                        if chi2 < best.chi2 { best = (chi2, amplitude) }
                    }
                    fits.append((a, c, h, best.chi2, best.amplitude))
                    h += step
                }
                c += step
            }
            a += step
        }
        guard let best = fits.min(by: { $0.chi2 < $1.chi2 }) else { return nil }
        let degrees = Double(max(1, samples.count - (baseline ? 5 : 4)))
        let spread = scaleByFitQuality ? 3.5 * max(1, best.chi2 / degrees) : 3.5
        let near = fits.filter { $0.chi2 <= best.chi2 + spread }
        func halfRange(_ key: (Double, Double, Double) -> Double) -> Double {
            let values = near.map { key($0.a, $0.c, $0.h) }
            return max(step / 2, ((values.max() ?? 0) - (values.min() ?? 0)) / 2)
        }
        // The face to open is the nearest wall among those surveyed.
        let distances: [(ProcedureProfile.Face, Double)] = [
            (.left, best.c), (.right, size.widthMetres - best.c), (.door, best.a), (.front, size.lengthMetres - best.a),
        ].filter { plan.profile.faces.contains($0.0) }
        let (face, depth) = distances.min { $0.1 < $1.1 } ?? (.left, best.c)
        let outside = best.a < 0 || best.a > size.lengthMetres || best.c < 0 || best.c > size.widthMetres
        return SourceEstimate(face: face, alongMetres: best.a, acrossMetres: best.c, heightMetres: best.h, depthBehindFaceMetres: depth,
                              alongUncertaintyMetres: halfRange { a, _, _ in a }, acrossUncertaintyMetres: halfRange { _, c, _ in c },
                              heightUncertaintyMetres: halfRange { _, _, h in h }, equivalentCs137MBq: best.activity / 0.09,
                              outsideContainer: scaleByFitQuality ? outside : nil)
    }

    /// A probe position in container coordinates (along from the doors, across from the left wall).
    public static func local(_ p: PlanPoint, size: ContainerSize, standOff s: Double) -> (Double, Double) {
        switch p.face {
        case .left: return (p.positionAlongFaceMetres, -s)
        case .front: return (size.lengthMetres + s, p.positionAlongFaceMetres)
        case .right: return (size.lengthMetres - p.positionAlongFaceMetres, size.widthMetres + s)
        case .door: return (-s, size.widthMetres - p.positionAlongFaceMetres)
        }
    }

    /// Length of the segment from `p` to `q` that lies inside the box [0, size].
    static func pathInside(from p: (Double, Double, Double), to q: (Double, Double, Double), box: (Double, Double, Double)) -> Double {
        var low = 0.0, high = 1.0
        let d = (q.0 - p.0, q.1 - p.1, q.2 - p.2)
        for (origin, direction, extent) in [(p.0, d.0, box.0), (p.1, d.1, box.1), (p.2, d.2, box.2)] {
            if abs(direction) < 1e-12 {
                if origin < 0 || origin > extent { return 0 }
                continue
            }
            var t0 = -origin / direction, t1 = (extent - origin) / direction
            if t0 > t1 { swap(&t0, &t1) }
            low = max(low, t0)
            high = min(high, t1)
            if low >= high { return 0 }
        }
        return (high - low) * (d.0 * d.0 + d.1 * d.1 + d.2 * d.2).squareRoot()
    }
}
