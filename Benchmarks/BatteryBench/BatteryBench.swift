import BenchmarkSupport
import Foundation
import Inspection
import RobotControl
import RobotSimulator
import RobotTesting

/// The battery campaign (issue 18, target "0 scans started that could not finish"): whole
/// scans in virtual time on the simulator, each with a charge drawn between 15 % and 45 %
/// and a true robot whose draw differs from the controller's figures by a seeded factor
/// (mean 1, sd 0.08, as a site's measured figures would be off), on a clean container and
/// on one with a source (re-measures make it longer). The controller refuses what its
/// estimate says will not fit; every scan it starts must finish above the stop level.
///
///     swift build -c release --product BatteryBench
///     .build/release/BatteryBench [--scans 200] [--seed 1] [--factor-sd 0.08] [--margin 1.15] [--without-current]
///
/// The robot stands 10 s before each scan (the officer planning it), so a safety unit that
/// measures the battery current (protocol 1.1 W7.9, the simulator's default) has measured
/// the standing draw, and the estimate is scaled by it; `--without-current` takes the
/// current sensor away (the estimate then rests on the configured figures alone).
/// `--factor-sd` spreads the true robot's draw wider (clipped to 0.5-1.5 when above 0.08);
/// `--margin` sets `battery.marginFactor`.
///
/// The pack is 200 Wh here (not the robot's 1 900 Wh) so that the demo profile's
/// 28-point scan takes 12-16 % of it, as a standard 300-point scan takes of the real
/// pack (the ratio the check is about), and a campaign runs in minutes.
@main
struct BatteryBench {
    static func main() async throws {
        let arguments = BenchmarkArguments()
        let scans = arguments.int("--scans", 200)
        let seed = arguments.seed()
        let spread = arguments.double("--factor-sd", 0.08)
        let (lowest, highest) = spread > 0.08 ? (0.5, 1.5) : (0.7, 1.3)
        let margin = arguments.double("--margin", ControlConfiguration().battery.marginFactor)
        let currentMeasured = !arguments.has("--without-current")
        let capacity = 200.0
        var random = SeededRandom(seed: seed)
        let profile = try ProcedureProfile.load(path: "profiles/demo.yaml")
        let plan = ScanPlan(container: ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 0, yMetres: 0),
                            profile: profile)
        var refused = 0, finished = 0, ranLow = 0, otherFailures = 0
        var leftAtEnd: [Double] = []
        var drawnOverEstimate: [Double] = []
        let started = Date()
        for n in 0..<scans {
            let charge = 15 + 30 * random.uniform()
            let factor = max(lowest, min(highest, 1 + spread * random.gaussian()))
            let scenarioFile = n % 2 == 0 ? "hil/scenarios/cs137-40ft.yaml" : "hil/scenarios/weak-40ft.yaml"
            var scenario = try Scenario.load(path: scenarioFile)
            scenario.seed = seed &* 1000 &+ UInt64(n)
            scenario.startLiftMetres = 0.4
            scenario.settings.battery.capacityWattHours = capacity
            scenario.settings.battery.initialChargePercent = charge
            scenario.settings.battery.consumptionFactor = factor
            scenario.settings.battery.currentMonitored = currentMeasured
            var configuration = ControlConfiguration()
            configuration.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 12.242, maxY: 0.05)]
            configuration.battery.capacityWattHours = capacity
            configuration.battery.marginFactor = margin
            let robot = try await VirtualRobot(scenario: scenario, configuration: configuration)
            robot.run(seconds: 10)
            robot.startRunning(idleWallSeconds: 0.2)
            let estimate = BatteryBudget.estimate(plan: plan, remaining: Set(plan.points.indices), backgroundFirst: true,
                                                  from: robot.loop.snapshot(), configuration: configuration)
            let before = robot.model.truth().batteryJoulesDrawn
            let record = InMemoryScanRecord()
            let executor = try robot.executor(plan: plan, record: record)
            do {
                _ = try await executor.run(scanDate: 20261207)
                finished += 1
                if arguments.has("--verbose") { print(String(format: "scan %d: charge %.1f %%, factor %.2f: finished", n, charge, factor)) }
                let truth = robot.model.truth()
                leftAtEnd.append(truth.batteryChargePercent)
                // Against the estimate without its margin and without the measured scaling:
                // how far the true draw is from the configured figures.
                let ratio = (truth.batteryJoulesDrawn - before) / 3600 / (estimate.wattHours / configuration.battery.marginFactor / estimate.measuredDrawFactor)
                drawnOverEstimate.append(ratio)
                if ratio > 1.25 {
                    let remeasures = record.recordedReadings().filter { $0.kind == .remeasure }.count
                    print(String(format: "scan %d (%@): drawn/estimate %.2f, factor %.2f, re-measures %d, simulated %.0f s", n,
                                 scenarioFile, ratio, factor, remeasures, robot.model.truth().simulatedSeconds))
                }
            } catch {
                switch error {
                case .lowBattery(let message) where record.recordedReadings().isEmpty:
                    // Refused before the first reading (the robot may have waited a moment
                    // for the charge to be reported).
                    refused += 1
                    if n < 3 || arguments.has("--verbose") { print(String(format: "scan %d: charge %.1f %%, factor %.2f: ", n, charge, factor) + "refused: \(message)") }
                case .lowBattery(let message):
                    ranLow += 1
                    print("RAN LOW after starting (scan \(n), charge \(charge), factor \(factor)): \(message)")
                default:
                    otherFailures += 1
                    print("scan \(n) failed: \(error)")
                }
            }
            robot.stopFreeRunning()
        }
        leftAtEnd.sort()
        drawnOverEstimate.sort()
        func quantile(_ values: [Double], _ q: Double) -> Double {
            values.isEmpty ? .nan : values[min(values.count - 1, Int(q * Double(values.count - 1)))]
        }
        print("BatteryBench seed \(seed): \(scans) scans (demo profile, 40 ft, \(Int(capacity)) Wh pack, charge 15-45 %, true draw x N(1, \(spread)) "
              + "clipped to \(lowest)-\(highest), margin \(margin), battery current \(currentMeasured ? "measured" : "not measured"))")
        print("  refused at the start: \(refused)")
        print("  started and finished: \(finished)")
        print("  started and stopped by a low battery: \(ranLow)   (target 0)")
        print("  other failures: \(otherFailures)")
        print(String(format: "  charge left at the end: min %.1f %%, median %.1f %% (stop level %.0f %%)",
                     leftAtEnd.first ?? .nan, quantile(leftAtEnd, 0.5), ControlConfiguration().battery.stopPercent))
        print(String(format: "  energy drawn / configured-figures estimate without its margin: min %.2f, median %.2f, p99 %.2f, max %.2f (margin %.2f)",
                     drawnOverEstimate.first ?? .nan, quantile(drawnOverEstimate, 0.5), quantile(drawnOverEstimate, 0.99),
                     drawnOverEstimate.last ?? .nan, margin))
        print(String(format: "  wall time %.0f s", Date().timeIntervalSince(started)))
    }
}
