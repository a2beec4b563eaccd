import Foundation
import RobotControl

/// What a scan (or the rest of one) will take from the battery, estimated from its plan:
/// the plan walked under the robot's limits (`PlanWalk`, the time model's walk) with the
/// robot's consumption figures (`BatteryConfiguration`), times the margin. The robot
/// stands for most of a scan, so the standing draw over the scan's time is most of it.
public struct BatteryEstimate: Sendable, Equatable, Codable {
    public var seconds: Double
    public var metresDriven: Double
    public var degreesTurned: Double
    public var liftRiseMetres: Double
    /// Re-measures allowed for (their time, walking and lifting are in the figures above).
    public var remeasuresAllowed: Int
    /// What the robot was measured to draw standing over its configured `idleWatts`
    /// (protocol 1.1 battery current), which every figure is scaled by; 1 when not measured.
    public var measuredDrawFactor: Double
    /// The standing draw that factor came from, watts; nil when not measured.
    public var standingWatts: Double?
    /// With the margin.
    public var wattHours: Double
    /// Of the battery's capacity, with the margin.
    public var percent: Double
}

public enum BatteryBudget {
    /// The estimate for the points in `remaining` (with the opening background when
    /// `backgroundFirst`) and the way back to the station, from where the robot stands.
    public static func estimate(plan: ScanPlan, remaining: Set<Int>, backgroundFirst: Bool, from s: RobotSnapshot,
                                configuration c: ControlConfiguration) -> BatteryEstimate {
        var walk = PlanWalk(configuration: c, x: s.xMetres, y: s.yMetres, headingDegrees: s.headingDegrees, liftMetres: s.liftHeightMetres)
        walk.scan(plan: plan, remaining: remaining, backgroundFirst: backgroundFirst, returnToStation: true,
                  backgroundAtEnd: plan.profile.backgroundRepeatAtEnd)
        // Re-measures are not known in advance: allow for 5 % of the points left (at least
        // 5), each measured again `remeasureCount` times after walking back half a face,
        // turning round and moving the lift half its range (BatteryBench: without this,
        // the demo profile's scans with 4-7 re-measures drew up to 1.6 times the walk).
        let p = plan.profile
        let remeasures = remaining.isEmpty ? 0 : max(5, Int((0.05 * Double(remaining.count)).rounded(.up))) * p.remeasureCount
        let heights = plan.points.map(\.heightMetres)
        let liftSpan = (heights.max() ?? 0) - (heights.min() ?? 0)
        let walkBack = plan.container.size.lengthMetres / 2
        let seconds = walk.seconds + Double(remeasures) * (p.settleSeconds + p.readingSeconds * Double(p.readingsPerPoint) * p.remeasureDwellFactor
            + walkBack / c.chassisMaxSpeedMetresPerSecond + 180 / c.turnRateDegreesPerSecond)
        let metres = walk.metresDriven + Double(remeasures) * walkBack
        let degrees = walk.degreesTurned + Double(remeasures) * 180
        let rise = walk.liftRiseMetres + Double(remeasures) * liftSpan / 2
        let b = c.battery
        // A robot whose battery current is measured (protocol 1.1 W7.9) scales the figures by
        // what it draws standing: cold, an ageing drive train or extra equipment show there
        // first. Bounded, so a bad reading cannot make the estimate absurd.
        let factor = s.standingWatts.map { b.idleWatts > 0 ? min(3, max(0.5, $0 / b.idleWatts)) : 1 } ?? 1
        let joules = (b.idleWatts * seconds + b.driveJoulesPerMetre * metres + b.liftJoulesPerMetre * rise + b.turnJoulesPerDegree * degrees) * factor
        let wattHours = joules / 3600 * b.marginFactor
        return BatteryEstimate(seconds: seconds, metresDriven: metres, degreesTurned: degrees, liftRiseMetres: rise,
                               remeasuresAllowed: remeasures, measuredDrawFactor: factor, standingWatts: s.standingWatts,
                               wattHours: wattHours, percent: wattHours / b.capacityWattHours * 100)
    }

    /// Why the scan must not start (or resume) with this charge, or nil: the charge must
    /// cover the estimate and leave the stop level at the end.
    public static func refusal(chargePercent: Double?, estimate e: BatteryEstimate, battery b: BatteryConfiguration,
                               pointsLeft: Int) -> String? {
        guard b.checked else { return nil }
        guard let charge = chargePercent else {
            return "the battery's charge is unknown (the safety unit has not answered yet): a scan starts only when the charge is known"
        }
        let needed = e.percent + b.stopPercent
        guard charge < needed else { return nil }
        let measured = e.standingWatts.map { String(format: ", the robot measured drawing %.0f W standing against %.0f W configured (×%.2f)", $0, b.idleWatts,
                                                                 e.measuredDrawFactor) } ?? ""
        return String(format: "the battery is at %.0f %%; the %d points left need about %.0f %% (%.0f Wh of %.0f Wh: %.0f min, %.0f m "
                      + "driven, %.1f m of lift, %d re-measures allowed for, with a margin of %.2f%@) and a scan stops below %.0f %%, so %.0f %% is needed: "
                      + "charge the robot (or change its battery) and start the scan again", charge, pointsLeft, e.percent, e.wattHours, b.capacityWattHours,
                      e.seconds / 60, e.metresDriven, e.liftRiseMetres, e.remeasuresAllowed, b.marginFactor, measured, b.stopPercent, needed.rounded(.up))
    }

    /// Why a scan of `plan` must not start (or resume) on this robot now, or nil: the check
    /// the command server and `robotd --scan` make before a record is created (every
    /// point left, the background first) and the executor makes when it (re)starts.
    public static func refusal(toStart plan: ScanPlan, on loop: ControlLoop, remaining: Set<Int>? = nil,
                               backgroundFirst: Bool = true) -> String? {
        let snapshot = loop.snapshot()
        let left = remaining ?? Set(plan.points.indices)
        let estimate = estimate(plan: plan, remaining: left, backgroundFirst: backgroundFirst, from: snapshot,
                                configuration: loop.configuration)
        return refusal(chargePercent: snapshot.batteryChargePercent, estimate: estimate, battery: loop.configuration.battery,
                       pointsLeft: left.count)
    }
}
