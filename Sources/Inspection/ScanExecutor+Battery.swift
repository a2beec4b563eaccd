import Foundation
import RobotControl

extension ScanExecutor {
    /// A scan (or the rest of a resumed one) starts only if the battery's charge covers
    /// its estimate and leaves the stop level at its end (`BatteryBudget`).
    /// The charge comes with the safety unit's status: a loop just started may not have
    /// read it yet, so this waits up to 5 s for it.
    func checkBatteryBeforeStarting(remaining: Set<Int>, backgroundFirst: Bool) async throws(Failure) {
        guard loop.configuration.battery.checked else { return }
        for _ in 0..<50 where loop.snapshot().batteryChargePercent == nil {
            await sleeper.sleep(seconds: 0.1 * sleeper.timeScale)
        }
        if let refusal = BatteryBudget.refusal(toStart: plan, on: loop, remaining: remaining, backgroundFirst: backgroundFirst) {
            update { $0.phase = .failed }
            throw .lowBattery(refusal)
        }
    }

    /// Before walking to the next point: below the stop level the scan ends here, with
    /// the robot standing still and every reading so far kept, and can be resumed once
    /// the robot is charged (the resumed scan checks its budget again).
    func checkBatteryBeforeMoving(on what: String, completed: Int) throws(Failure) {
        let battery = loop.configuration.battery
        guard battery.checked, let charge = loop.snapshot().batteryChargePercent, charge < battery.stopPercent else { return }
        update { $0.note = "battery low: the scan stopped before \(what)" }
        throw .lowBattery("the battery is at \(Int(charge)) %, below the \(Int(battery.stopPercent)) % at which a scan stops: it stopped "
                          + "before \(what) with \(completed) of \(plan.points.count) points measured and every reading kept; "
                          + "charge the robot and resume the scan")
    }
}
