import Foundation
import RobotControl

/// The fastest a plan can possibly run under the robot's limits: Σ(settle + dwell)
/// over the background and every point, plus the minimum travel time: each move is a
/// turn on the spot towards the next stand and a trapezoidal walk, with the lift
/// moving at the same time (so a move costs the longer of the two).
public enum ScanTimeModel {
    public static func lowerBoundSeconds(plan: ScanPlan, configuration c: ControlConfiguration, startX: Double, startY: Double,
                                         startHeadingDegrees: Double, startLiftMetres: Double) -> Double {
        let p = plan.profile
        var x = startX, y = startY, heading = startHeadingDegrees, lift = startLiftMetres
        var total = 0.0

        func walkSeconds(toX tx: Double, toY ty: Double) -> Double {
            let d = hypot(tx - x, ty - y)
            guard d > 0.004 else { return 0 }
            let target = atan2(ty - y, tx - x) * 180 / .pi
            var turn = (target - heading).truncatingRemainder(dividingBy: 360)
            if turn > 180 { turn -= 360 }
            if turn < -180 { turn += 360 }
            heading = target
            x = tx
            y = ty
            let turnTime = abs(turn) < 0.01 ? 0 : TrapezoidalProfile(distance: turn, maxSpeed: c.turnRateDegreesPerSecond,
                                                                       acceleration: c.turnAccelerationDegreesPerSecond2).duration
            return turnTime + TrapezoidalProfile(distance: d, maxSpeed: c.chassisMaxSpeedMetresPerSecond,
                                                 acceleration: c.chassisAccelerationMetresPerSecond2).duration
        }

        func liftSeconds(to height: Double) -> Double {
            defer { lift = height }
            return TrapezoidalProfile(distance: height - lift, maxSpeed: c.liftMaxSpeedMetresPerSecond,
                                      acceleration: c.liftAccelerationMetresPerSecond2).duration
        }

        total += max(walkSeconds(toX: plan.backgroundX, toY: plan.backgroundY), liftSeconds(to: p.backgroundHeightMetres))
        total += Double(p.backgroundReadings) * p.backgroundIntervalSeconds
        for point in plan.points {
            var walk = 0.0
            for waypoint in plan.waypoints where waypoint.beforePoint == point.index {
                walk += walkSeconds(toX: waypoint.xMetres, toY: waypoint.yMetres)
            }
            walk += walkSeconds(toX: point.standX, toY: point.standY)
            total += max(walk, liftSeconds(to: point.heightMetres))
            total += p.settleSeconds + Double(p.readingsPerPoint) * p.readingSeconds
        }
        if p.backgroundRepeatAtEnd {
            var walk = 0.0
            for w in plan.returnWaypoints { walk += walkSeconds(toX: w.xMetres, toY: w.yMetres) }
            walk += walkSeconds(toX: plan.backgroundX, toY: plan.backgroundY)
            total += max(walk, liftSeconds(to: p.backgroundHeightMetres))
            total += Double(p.backgroundReadings) * p.backgroundIntervalSeconds
        }
        return total
    }
}
