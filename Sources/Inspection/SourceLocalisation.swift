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
}

/// Fits an unshielded point source, net = A / r², to the net dose rates by weighted
/// least squares over a lattice of positions inside the container (A is solved in
/// closed form at each position). Attenuation is left out, so activity is a lower
/// bound and depth is rough; the position along the wall and the height are what
/// officers need to know where to open.
public enum SourceLocalisation {
    public static func estimate(plan: ScanPlan, verdict: Verdict, step: Double = 0.2) -> SourceEstimate? {
        let size = plan.container.size
        let s = plan.profile.standOffMetres
        // Probe positions in container coordinates, with each point's net and weight.
        var samples: [(a: Double, c: Double, h: Double, y: Double, w: Double)] = []
        for j in verdict.points {
            let p = plan.points[j.pointIndex]
            let (a, c) = local(p, size: size, standOff: s)
            samples.append((a, c, p.heightMetres, j.net, 1 / max(j.netUncertainty * j.netUncertainty, 1e-8)))
        }
        let significant = verdict.points.filter { $0.net > 3 * $0.netUncertainty }.count
        guard significant >= 2, samples.count >= 4 else { return nil }

        var fits: [(a: Double, c: Double, h: Double, chi2: Double, activity: Double)] = []
        var a = step / 2
        while a < size.lengthMetres {
            var c = step / 2
            while c < size.widthMetres {
                var h = step / 2
                while h < size.heightMetres {
                    var sfy = 0.0, sff = 0.0
                    for x in samples {
                        let r2 = (x.a - a) * (x.a - a) + (x.c - c) * (x.c - c) + (x.h - h) * (x.h - h)
                        let f = 1 / max(r2, 0.01)
                        sfy += x.w * f * x.y
                        sff += x.w * f * f
                    }
                    let amplitude = max(0, sfy / sff)
                    var chi2 = 0.0
                    for x in samples {
                        let r2 = (x.a - a) * (x.a - a) + (x.c - c) * (x.c - c) + (x.h - h) * (x.h - h)
                        let d = x.y - amplitude / max(r2, 0.01)
                        chi2 += x.w * d * d
                    }
                    fits.append((a, c, h, chi2, amplitude))
                    h += step
                }
                c += step
            }
            a += step
        }
        guard let best = fits.min(by: { $0.chi2 < $1.chi2 }) else { return nil }
        let near = fits.filter { $0.chi2 <= best.chi2 + 3.5 }
        func halfRange(_ key: (Double, Double, Double) -> Double) -> Double {
            let values = near.map { key($0.a, $0.c, $0.h) }
            return max(step / 2, ((values.max() ?? 0) - (values.min() ?? 0)) / 2)
        }
        // The face to open is the nearest wall among those surveyed.
        let distances: [(ProcedureProfile.Face, Double)] = [
            (.left, best.c), (.right, size.widthMetres - best.c), (.door, best.a), (.front, size.lengthMetres - best.a),
        ].filter { plan.profile.faces.contains($0.0) }
        let (face, depth) = distances.min { $0.1 < $1.1 } ?? (.left, best.c)
        return SourceEstimate(face: face, alongMetres: best.a, acrossMetres: best.c, heightMetres: best.h, depthBehindFaceMetres: depth,
                              alongUncertaintyMetres: halfRange { a, _, _ in a }, acrossUncertaintyMetres: halfRange { _, c, _ in c },
                              heightUncertaintyMetres: halfRange { _, _, h in h }, equivalentCs137MBq: best.activity / 0.09)
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
}
