import Foundation
import RobotControl

/// The fastest a plan can possibly run under the robot's limits: Σ(settle + dwell)
/// over the background and every point, plus the minimum travel time: each move is a
/// turn on the spot towards the next stand and a trapezoidal walk, with the lift
/// moving at the same time (so a move costs the longer of the two).
public enum ScanTimeModel {
    public static func lowerBoundSeconds(plan: ScanPlan, configuration c: ControlConfiguration, startX: Double, startY: Double,
                                         startHeadingDegrees: Double, startLiftMetres: Double) -> Double {
        var walk = PlanWalk(configuration: c, x: startX, y: startY, headingDegrees: startHeadingDegrees, liftMetres: startLiftMetres)
        walk.scan(plan: plan, remaining: Set(plan.points.indices), backgroundFirst: true, returnToStation: plan.profile.backgroundRepeatAtEnd,
                  backgroundAtEnd: plan.profile.backgroundRepeatAtEnd)
        return walk.seconds
    }
}

/// A walk through a plan under the robot's limits, adding up its minimum time and what
/// the robot does on the way (metres driven, degrees turned, metres the lift rises):
/// the time model's and the battery budget's common ground.
struct PlanWalk {
    let c: ControlConfiguration
    var x: Double, y: Double, heading: Double, lift: Double
    private(set) var seconds = 0.0
    private(set) var metresDriven = 0.0
    private(set) var degreesTurned = 0.0
    private(set) var liftRiseMetres = 0.0

    init(configuration: ControlConfiguration, x: Double, y: Double, headingDegrees: Double, liftMetres: Double) {
        c = configuration
        self.x = x
        self.y = y
        heading = headingDegrees
        lift = liftMetres
    }

    private mutating func walkSeconds(toX tx: Double, toY ty: Double) -> Double {
        let d = hypot(tx - x, ty - y)
        guard d > 0.004 else { return 0 }
        let target = atan2(ty - y, tx - x) * 180 / .pi
        var turn = (target - heading).truncatingRemainder(dividingBy: 360)
        if turn > 180 { turn -= 360 }
        if turn < -180 { turn += 360 }
        heading = target
        x = tx
        y = ty
        metresDriven += d
        degreesTurned += abs(turn)
        let turnTime = abs(turn) < 0.01 ? 0 : TrapezoidalProfile(distance: turn, maxSpeed: c.turnRateDegreesPerSecond,
                                                                   acceleration: c.turnAccelerationDegreesPerSecond2).duration
        return turnTime + TrapezoidalProfile(distance: d, maxSpeed: c.chassisMaxSpeedMetresPerSecond,
                                             acceleration: c.chassisAccelerationMetresPerSecond2).duration
    }

    private mutating func liftSeconds(to height: Double) -> Double {
        defer { lift = height }
        liftRiseMetres += max(0, height - lift)
        return TrapezoidalProfile(distance: height - lift, maxSpeed: c.liftMaxSpeedMetresPerSecond,
                                  acceleration: c.liftAccelerationMetresPerSecond2).duration
    }

    /// Walks (through the waypoints) and lifts at the same time, then stays `dwell` seconds.
    mutating func visit(through waypoints: [(x: Double, y: Double)], toX tx: Double, toY ty: Double, heightMetres: Double, dwell: Double) {
        var walk = 0.0
        for w in waypoints { walk += walkSeconds(toX: w.x, toY: w.y) }
        walk += walkSeconds(toX: tx, toY: ty)
        seconds += max(walk, liftSeconds(to: heightMetres)) + dwell
    }

    /// The background (when `backgroundFirst`), the `remaining` points in the plan's
    /// order with their corners, and the way back to the station (measuring the closing
    /// background there when `backgroundAtEnd`).
    mutating func scan(plan: ScanPlan, remaining: Set<Int>, backgroundFirst: Bool, returnToStation: Bool, backgroundAtEnd: Bool) {
        let p = plan.profile
        let backgroundDwell = Double(p.backgroundReadings) * p.backgroundIntervalSeconds
        if backgroundFirst {
            visit(through: [], toX: plan.backgroundX, toY: plan.backgroundY, heightMetres: p.backgroundHeightMetres, dwell: backgroundDwell)
        }
        var pendingCorners: [(x: Double, y: Double)] = []
        for point in plan.points {
            pendingCorners += plan.waypoints.filter { $0.beforePoint == point.index }.map { (x: $0.xMetres, y: $0.yMetres) }
            guard remaining.contains(point.index) else { continue }
            visit(through: pendingCorners, toX: point.standX, toY: point.standY, heightMetres: point.heightMetres,
                  dwell: p.settleSeconds + Double(p.readingsPerPoint) * p.readingSeconds)
            pendingCorners = []
        }
        if returnToStation {
            visit(through: plan.returnWaypoints.map { (x: $0.xMetres, y: $0.yMetres) }, toX: plan.backgroundX, toY: plan.backgroundY,
                  heightMetres: p.backgroundHeightMetres, dwell: backgroundAtEnd ? backgroundDwell : 0)
        }
    }
}
