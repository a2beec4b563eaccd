import Foundation

/// Where the probe sits on the robot, from the robot's reference point (the point whose
/// pose the chassis reports) in the robot's own frame: `forwardMetres` along its heading,
/// `rightMetres` to its right, `upMetres` above the lift's height. A plan puts the probe,
/// not the reference point, at the stand-off from the wall, and the robot where that
/// puts the probe (`PlanPoint.standXMetres`). The route goes round the container with the
/// container on the robot's right, so a positive `rightMetres` reaches towards the wall.
///
/// `atReferencePoint` (all zero) is the idealisation of plans recorded before the mount
/// was known: no real chassis can stand 0.10 m from a wall with its centre.
public struct ProbeMount: Sendable, Equatable, Codable {
    public var forwardMetres: Double
    public var rightMetres: Double
    public var upMetres: Double

    public init(forwardMetres: Double = 0, rightMetres: Double = 0, upMetres: Double = 0) {
        self.forwardMetres = forwardMetres
        self.rightMetres = rightMetres
        self.upMetres = upMetres
    }

    public static let atReferencePoint = ProbeMount()

    /// The probe's offset in the yard from the reference point, at a heading (degrees
    /// anticlockwise from the yard's x axis).
    public func yardOffset(headingDegrees: Double) -> (dx: Double, dy: Double) {
        let h = headingDegrees * .pi / 180
        return (forwardMetres * cos(h) + rightMetres * sin(h), forwardMetres * sin(h) - rightMetres * cos(h))
    }

    /// How far the probe reaches from the reference point: the radius it sweeps as the
    /// robot turns in place.
    public var reachMetres: Double { (forwardMetres * forwardMetres + rightMetres * rightMetres).squareRoot() }

    /// The margin round the container's footprint that the reference point's path keeps
    /// clear of, so that the robot may turn in place anywhere on it without its probe
    /// touching a wall (`ContainerRoute`): the probe's reach and 3 cm.
    public var routeMarginMetres: Double { max(0.05, reachMetres + 0.03) }

    /// What makes the mount unusable with a stand-off: values out of range, or a probe
    /// that would come within 5 cm of the wall if the robot turned in place at a stand
    /// (the reference point is `standOff + rightMetres` from the wall there). The rule is
    /// the one the route keeps everywhere: turning is safe on every stop of the path, so
    /// a resumed scan can turn round wherever the robot was left.
    public func problems(standOffMetres: Double) -> [String] {
        var found: [String] = []
        for (name, value, range) in [("forwardMetres", forwardMetres, -1.5...1.5), ("rightMetres", rightMetres, -0.05...1.5),
                                     ("upMetres", upMetres, -0.5...0.5)] where !(value.isFinite && range.contains(value)) {
            found.append("probe.\(name) \(value) must be \(range.lowerBound) to \(range.upperBound) m")
        }
        guard found.isEmpty else { return found }
        let clearance = standOffMetres + rightMetres - reachMetres
        if clearance < 0.05 {
            found.append(String(format: "the probe (%.2f m forward, %.2f m right) would pass %.2f m from the wall when the robot turns in "
                                + "place at a stand (at least 0.05 m is needed): mount it closer to the robot's side (less forward), "
                                + "or increase the stand-off", forwardMetres, rightMetres, clearance))
        }
        return found
    }
}
