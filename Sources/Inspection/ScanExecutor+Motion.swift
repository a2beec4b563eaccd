import Foundation
import RobotControl

/// The executor's way about the yard: routes round the container, the walk to a point's
/// stand with its lift height and heading, and whether the robot still stands there.
extension ScanExecutor {
    /// The stops still to walk on the way to (x, y), from where the robot stands now: the
    /// plan's corner waypoints when it can walk them, else the way round the container
    /// (`ContainerRoute`). After a restart the robot may stand anywhere: past some corners,
    /// on the far side, or pushed inside the keep-out margin.
    func route(via waypoints: [Waypoint], to x: Double, _ y: Double) -> [(x: Double, y: Double)] {
        let s = loop.snapshot()
        return ContainerRoute.stops(from: (s.xMetres, s.yMetres), via: waypoints.map { (x: $0.xMetres, y: $0.yMetres) }, to: (x, y),
                                    container: plan.container, standOffMetres: plan.robotStandOffMetres,
                                    zones: loop.configuration.keepOutZones, marginMetres: (plan.probeMount ?? .atReferencePoint).routeMarginMetres)
    }

    /// The lift height that puts the probe at the point's height.
    func liftHeight(_ point: PlanPoint) -> Double { point.heightMetres - (plan.probeMount?.upMetres ?? 0) }

    /// Walks to the point's stand (through the corners still needed), lifting on the way,
    /// and turns to the face's heading when the probe is mounted off the reference point
    /// (after a restart the robot may arrive from anywhere, facing anywhere).
    func goTo(_ point: PlanPoint, via waypoints: [Waypoint]) async throws(Failure) {
        for stop in route(via: waypoints, to: point.standX, point.standY) {
            try await move(x: stop.x, y: stop.y, height: nil)
        }
        try await move(x: point.standX, y: point.standY, height: liftHeight(point))
        if let heading = point.headingDegrees, Self.headingError(loop.snapshot().headingDegrees, heading) > 0.5 {
            _ = try await perform(.turnTo(headingDegrees: heading), timeout: 60)
        }
    }

    static func headingError(_ a: Double, _ b: Double) -> Double {
        let d = abs((a - b).truncatingRemainder(dividingBy: 360))
        return min(d, 360 - d)
    }

    /// Whether the robot still stands at the point (a stop may have come with a push).
    func standsAt(_ point: PlanPoint) -> Bool {
        let s = loop.snapshot()
        let facing = point.headingDegrees.map { Self.headingError(s.headingDegrees, $0) <= 1 } ?? true
        return hypot(s.xMetres - point.standX, s.yMetres - point.standY) <= 0.05 && abs(s.liftHeightMetres - liftHeight(point)) <= 0.02 && facing
    }

    /// Walks (and lifts, at the same time) to a stand position.
    func move(x: Double, y: Double, height: Double?) async throws(Failure) {
        let s = loop.snapshot()
        let needWalk = hypot(s.xMetres - x, s.yMetres - y) > 0.004
        let needLift = height.map { abs(s.liftHeightMetres - $0) > 0.002 } ?? false
        if needWalk && needLift, let height {
            // Both axes at once: the lift travels while the chassis walks.
            let walkId = loop.submit(.walkTo(x: x, y: y, speedMetresPerSecond: nil))
            _ = try await perform(.lift(heightMetres: height), timeout: 60)
            let walk = await loop.result(of: walkId, timeout: 120)
            if walk?.state != .done {
                _ = try await perform(.walkTo(x: x, y: y, speedMetresPerSecond: nil), timeout: 120)
            }
            return
        }
        if needWalk { _ = try await perform(.walkTo(x: x, y: y, speedMetresPerSecond: nil), timeout: 120) }
        if needLift, let height { _ = try await perform(.lift(heightMetres: height), timeout: 60) }
    }
}
