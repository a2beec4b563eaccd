import BenchmarkSupport
import Foundation
import Inspection
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting

/// Scan time against the plan's lower bound (Σ settle and dwell + minimum travel
/// under the limits), for a clean 40 ft container with the default SN/T 0570 profile
/// and the simulator's 115200-baud line timing on. Target ≤ 1.10.
///
///     swift build -c release --product ScanBench
///     .build/release/ScanBench [--profile profiles/snt0570-2007.yaml] [--time-scale 1]
///     .build/release/ScanBench --virtual --profile A.yaml,B.yaml   # the robot's time of each, in virtual time
///
/// Time is measured in the simulator's seconds. Above a time scale of 1 the loop's
/// 10 ms tick and the real line timing are no longer scaled with the robot, so only
/// `--time-scale 1` gives the honest figure (about 40 minutes for 300 points).
@main
struct ScanBench {
    static func main() async throws {
        let arguments = BenchmarkArguments()
        let profilePath = arguments.string("--profile", "profiles/snt0570-2007.yaml")
        let timeScale = Double(arguments.string("--time-scale", "1")) ?? 1
        if arguments.has("--virtual") {
            // Every profile given (comma-separated) in one run, in virtual time.
            try await VirtualScanTime.run(profiles: profilePath.split(separator: ",").map(String.init))
            return
        }
        let profile = try ProcedureProfile.load(path: profilePath)

        var scenario = Scenario(name: "scan bench: clean 40 ft")
        scenario.startX = -12
        scenario.startY = 1
        scenario.startLiftMetres = 0.5
        scenario.timeScale = timeScale
        scenario.lineTiming = LineTiming(enabled: true, baud: 115_200, bitsPerCharacter: 10, turnaroundMicroseconds: 500)
        scenario.field = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0.1, driftPeriodSeconds: 7200,
                                        containers: [PlacedContainer(number: "MSKU9070323", type: .fortyFoot, x: 0, y: 0)])
        var requested = ControlConfiguration()
        requested.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 12.242, maxY: 0.05)]
        // PtyRobot stretches the firmware watchdog by the time scale (its time runs faster).
        let robot = try await PtyRobot(scenario: scenario, configuration: requested)
        let (simulator, bus, loop) = (robot.simulator, robot.bus, robot.loop)
        let configuration = loop.configuration
        _ = await loop.run(.homeLift, timeout: 120)

        let placement = ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 0, yMetres: 0)
        let plan = ScanPlan(container: placement, profile: profile)
        let info = loop.detectorInfo!
        let instrument = InstrumentRecord(serialNumber: info.serialNumber,
                                          sensitivityCountsPerSecondPerMicrosievertPerHour: info.sensitivityCountsPerSecondPerMicrosievertPerHour,
                                          calibrationFactor: info.calibrationFactor, calibrationDate: info.calibrationDate,
                                          calibrationExpiry: info.calibrationExpiry)
        let truth = simulator.model.truth()
        let bound = ScanTimeModel.lowerBoundSeconds(plan: plan, configuration: configuration, startX: truth.x, startY: truth.y,
                                                    startHeadingDegrees: truth.headingDegrees, startLiftMetres: truth.liftMetres)
        say("ScanBench: \(plan.points.count) points, profile '\(profile.name)', line timing 115200 baud, time scale \(timeScale)")
        say(String(format: "  lower bound %.1f s (%.1f min)", bound, bound / 60))
        let executor = ScanExecutor(loop: loop, plan: plan, instrument: instrument, record: InMemoryScanRecord(),
                                    sleeper: Sleeper(timeScale: timeScale))
        let start = simulator.model.simulatedSeconds
        let wallStart = Date()
        // An officer: a safety stop (a lost link on a loaded machine, say) is reset and
        // counted, as on the quay, instead of leaving the scan waiting for ever.
        let stops = StopLog()
        let officer = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 100_000_000)
                guard let cause = loop.snapshot().stopCause else { continue }
                stops.add("\(cause)")
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                while loop.snapshot().stopCause != nil && !Task.isCancelled { _ = await loop.run(.resetFault, timeout: 3) }
            }
        }
        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 60_000_000_000)
                let p = executor.progress
                say("  … \(p.phase.rawValue) \(p.completedPoints)/\(p.totalPoints) points after \(Int(simulator.model.simulatedSeconds - start)) s")
            }
        }
        let verdict = try await executor.run(scanDate: 20261129)
        officer.cancel()
        reporter.cancel()
        let took = simulator.model.simulatedSeconds - start
        say(String(format: "  scan took %.1f s (%.1f min) of robot time, %.1f s wall; verdict %@", took, took / 60,
                     Date().timeIntervalSince(wallStart), verdict.outcome.rawValue))
        say(String(format: "  ratio scan time / lower bound = %.3f (target <= 1.10); by hand about 60 min", took / bound))
        let stats = loop.statistics()
        say("  safety stops during the scan (reset by the officer task): \(stops.entries.count)" + (stops.entries.isEmpty ? "" : " — " + stops.entries.joined(separator: "; ")))
        say("  loop overruns \(stats.overruns); bus: " + bus.statisticsSnapshot().map { "\($0.device) \($0.transactions) tx, \($0.failures) failed, p99 \($0.latencyP99Microseconds) µs" }.joined(separator: "; "))
        robot.stop()
    }
}

final class StopLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ entry: String) { lock.withLock { list.append(entry) } }
    var entries: [String] { lock.withLock { list } }
}

/// Writes a line at once (stdout may be a file).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// `--virtual`: the same clean 40 ft container scanned with each profile in virtual time
/// (the real executor, control loop and simulator, stepped; no line timing): the robot's
/// time of each scan against its lower bound, side by side from one run.
enum VirtualScanTime {
    struct Case {
        var name: String
        var size: ContainerSize
        var sources: [PointSource]
    }

    static let cases = [
        Case(name: "clean 40 ft", size: .fortyFoot, sources: []),
        Case(name: "clean 20 ft", size: .twentyFoot, sources: []),
        // hil/scenarios/cs137-40ft.yaml's source: about 1.5 μSv/h at the nearest points.
        Case(name: "40 ft, Cs-137 20 MBq 0.4 m behind the left wall", size: .fortyFoot,
             sources: [PointSource(nuclide: .cs137, activityMBq: 20, along: 7.5, across: 0.4, height: 1.2)]),
    ]

    static func run(profiles: [String]) async throws {
        say("ScanBench --virtual: robot time in virtual time (the real executor, loop and simulator; no line timing), seed 1")
        for item in cases {
            for path in profiles {
                let profile = try ProcedureProfile.load(path: path)
                var scenario = Scenario(name: "scan bench: \(item.name)")
                scenario.startX = -12
                scenario.startY = 1
                scenario.startLiftMetres = 0.5
                var container = PlacedContainer(number: "MSKU9070323", type: item.size == .fortyFoot ? .fortyFoot : .twentyFoot, x: 0, y: 0,
                                                cargoDensity: 0.4)
                container.sources = item.sources
                scenario.field = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0.1, driftPeriodSeconds: 7200,
                                                containers: [container])
                var configuration = ControlConfiguration()
                configuration.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: item.size.lengthMetres + 0.05, maxY: 0.05)]
                let robot = try await VirtualRobot(scenario: scenario, configuration: configuration)
                _ = robot.perform(.homeLift)
                robot.startRunning(idleWallSeconds: 5)
                let plan = ScanPlan(container: ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: item.size, xMetres: 0, yMetres: 0),
                                    profile: profile)
                let truth = robot.model.truth()
                let bound = ScanTimeModel.lowerBoundSeconds(plan: plan, configuration: configuration, startX: truth.x, startY: truth.y,
                                                            startHeadingDegrees: truth.headingDegrees, startLiftMetres: truth.liftMetres)
                let record = InMemoryScanRecord()
                let executor = try robot.executor(plan: plan, record: record)
                let start = robot.seconds
                let verdict = try await executor.run(scanDate: 20261207)
                let took = robot.seconds - start
                robot.stopFreeRunning()
                let standing = record.recordedReadings().filter { $0.kind == .remeasure }.count
                say(String(format: "  %@ | %@ (settle %.1f s): %d points, scan %.0f s (%.1f min)%@, verdict %@, %d re-measured standing",
                           item.name, path, profile.settleSeconds, plan.points.count, took, took / 60,
                           profile.movingSurvey ? " (moving)" : String(format: ", lower bound %.0f s, ratio %.3f", bound, took / bound),
                           verdict.outcome.rawValue, standing))
            }
        }
    }
}
