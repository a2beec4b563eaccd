import BenchmarkSupport
import Foundation
import Inspection
import RobotSimulator

/// The verdict in a real yard, by Monte Carlo: for each cell of the matrix (`Cells.swift`),
/// containers scanned with the real standard plan, the real re-measure screen and the
/// real `Judgement`, the truth drawn from the simulator's field (shadowing, site offset,
/// drift, rain, NORM, point sources, the probe's energy response) and exact Poisson counts.
/// The robot's motion is a timeline (6.7 s a point on the standard profile); `ScanBench` measures the real one.
///
///     ROBOT_BENCHMARKS=1 swift build -c release --product VerdictBench
///     .build/release/VerdictBench [--clean 4000] [--other 600] [--seed 2026] [--only TEXT] [--profile PATH]
///
/// Prints, per cell, P(anomalous), P(exceeds), P(inconclusive) and refusals with their 95 %
/// Clopper–Pearson intervals, re-measures per container, and localisation where it applies.
@main
struct VerdictBench {
    static func main() throws {
        let arguments = BenchmarkArguments()
        let clean = Int(arguments.string("--clean", "4000")) ?? 4000
        let other = Int(arguments.string("--other", "600")) ?? 600
        let seed = UInt64(arguments.string("--seed", "2026")) ?? 2026
        let only = arguments.string("--only", "")
        let profile = try ProcedureProfile.load(path: arguments.string("--profile", "profiles/snt0570-2007.yaml"))
        let cells = Matrix.cells(clean: clean, other: other).filter { only.isEmpty || $0.name.contains(only) || $0.group.rawValue == only }
        let placement = ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .fortyFoot, xMetres: 0, yMetres: 0)
        let plan = ScanPlan(container: placement, profile: profile)
        let instrument = InstrumentRecord(serialNumber: "BENCH", sensitivityCountsPerSecondPerMicrosievertPerHour: 300, calibrationFactor: 1,
                                          calibrationDate: 20_260_301, calibrationExpiry: 20_270_301)
        if arguments.has("--explain") {
            Explain.run(plan: plan, shadowing: Double(arguments.string("--shadowing", "1")) ?? 1, density: Double(arguments.string("--density", "0.5")) ?? 0.5)
            return
        }
        print("VerdictBench: \(cells.count) cells, seed \(seed), profile \(profile.name) (rule \(profile.decision == nil ? "1" : DecisionSettings.ruleName)), "
              + "container α \(profile.alpha), 40 ft, \(plan.points.count) points")
        let started = Date()
        let results = Results(count: cells.count)
        DispatchQueue.concurrentPerform(iterations: cells.count) { i in
            results.set(i, CellRun.run(cells[i], plan: plan, instrument: instrument, seed: seed &+ UInt64(i) &* 7919))
        }
        print(CellRun.header)
        for (cell, summary) in zip(cells, results.all) { print(summary.line(cell)) }
        print(String(format: "wall time %.0f s on %d cores", Date().timeIntervalSince(started), ProcessInfo.processInfo.activeProcessorCount))
    }
}

/// Collects the cells' summaries from the worker threads.
final class Results: @unchecked Sendable {
    private var values: [CellRun.Summary?]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ summary: CellRun.Summary) { lock.withLock { values[i] = summary } }
    var all: [CellRun.Summary] { lock.withLock { values.compactMap { $0 } } }
}

enum CellRun {
    struct Summary: Sendable {
        var trials = 0
        var anomalous = 0
        var detected = 0
        var exceeds = 0
        var inconclusive = 0
        var refused = 0
        var remeasures = 0
        var extraSeconds = 0.0
        var sources = 0
        var located = 0
        var alongErrors: [Double] = []
        var outside = 0

        func line(_ cell: Cell) -> String {
            func rate(_ k: Int) -> String {
                let (low, high) = Binomial.interval(k, trials)
                return String(format: "%6.2f%% [%5.2f, %5.2f]", 100 * Double(k) / Double(max(trials, 1)), 100 * low, 100 * high)
            }
            var text = "\(cell.name.padding(toLength: 58, withPad: " ", startingAt: 0)) \(String(format: "%6d", trials)) "
                + "\(rate(anomalous)) \(rate(exceeds)) \(rate(inconclusive)) \(rate(refused))"
                + String(format: " %5.2f %6.1f", Double(remeasures) / Double(max(trials, 1)), extraSeconds / Double(max(trials, 1)))
            if cell.group != .clean { text += "  P(anomalous or exceeds) \(rate(detected))" }
            if cell.group == .neighbour { text += "  a hot spot placed outside the container \(rate(outside))" }
            if sources > 0 {
                let sorted = alongErrors.sorted()
                text += String(format: "  located %d/%d (%.1f%%, lower 95%% %.1f%%), median along error %.2f m", located, sources,
                               100 * Double(located) / Double(sources), 100 * Binomial.interval(located, sources).low,
                               sorted.isEmpty ? .nan : sorted[sorted.count / 2])
            }
            return text
        }
    }

    static let header = "cell".padding(toLength: 58, withPad: " ", startingAt: 0)
        + "      n   P(anomalous)  [95% CI]   P(exceeds)    [95% CI]   P(inconclusive) [95% CI] refused  [95% CI]  re/ctr  +s/ctr"

    static func run(_ cell: Cell, plan: ScanPlan, instrument: InstrumentRecord, seed: UInt64) -> Summary {
        var random = SeededRandom(seed: seed)
        var field = RadiationField(backgroundMicrosievertsPerHour: cell.background, driftAmplitude: cell.motion == .sine ? 0.1 : 0,
                                   driftPeriodSeconds: 7200)
        var container = PlacedContainer(number: "CSQU3054383", type: .fortyFoot, x: 0, y: 0, cargoDensity: cell.cargoDensity)
        field.environment.shadowingScale = cell.shadowing
        field.environment.siteOffsetFraction = cell.siteOffset
        field.environment.randomWalkPerRootHour = cell.motion == .walk ? 0.02 : 0
        if cell.norm > 0 { container.normDoseRateAtContactMicrosievertsPerHour = 1 }
        field.containers = [container]
        if cell.neighbour > 0 {
            // The next container, 2 m beyond the right wall, with a source at its near wall.
            var next = PlacedContainer(number: "TGHU1234565", type: .fortyFoot, x: 0, y: -(2.438 + 2.0), cargoDensity: 0.5)
            next.sources = [PointSource(nuclide: .cs137, activityMBq: 1, along: 6.0, across: 0.05, height: 1.2)]
            field.containers.append(next)
        }
        // Scale NORM and the neighbour's source to their stated highest true net.
        let probe = ContainerTrial(plan: plan, instrument: instrument, field: field, response: cell.response)
        if cell.norm > 0 {
            field.containers[0].normDoseRateAtContactMicrosievertsPerHour = probe.scale(to: cell.norm, field: field) { f, x in
                f.containers[0].normDoseRateAtContactMicrosievertsPerHour = x
            }
        }
        if cell.neighbour > 0 {
            field.containers[1].sources[0].activityMBq = probe.scale(to: cell.neighbour, field: field) { f, x in f.containers[1].sources[0].activityMBq = x }
        }
        let base = ContainerTrial(plan: plan, instrument: instrument, field: field, response: cell.response)
        var summary = Summary()
        for _ in 0..<cell.containers {
            var trialField = field
            if cell.motion == .walk { trialField.environment.prepare(seed: random.next()) }
            if cell.motion == .rain {
                trialField.environment.rain = [RainEvent(startSeconds: random.uniform() * 2600, peakFraction: 0.5)]
            }
            let trial = base.with(field: trialField)
            let offset = cell.motion == .sine ? random.uniform() * 7200 : 0
            let sources = trial.draw(cell.sources, &random, strengthOnTrueDose: cell.group == .response)
            let result = trial.run(sources: sources, random: &random, timeOffset: offset)
            summary.trials += 1
            switch result.outcome {
            case .anomalous:
                summary.anomalous += 1
                summary.detected += 1
            case .exceeds:
                summary.exceeds += 1
                summary.detected += 1
            case .inconclusive: summary.inconclusive += 1
            case .pass: break
            }
            if result.refused { summary.refused += 1 }
            if result.outsideSpot { summary.outside += 1 }
            summary.remeasures += result.remeasures
            summary.extraSeconds += result.extraSeconds
            summary.sources += result.located.count
            summary.located += result.located.filter { $0 }.count
            summary.alongErrors += result.alongErrors
        }
        return summary
    }
}

/// `--explain`: the noise-free truth of a clean, shadowed container against the model fitted to it.
enum Explain {
    static func run(plan: ScanPlan, shadowing: Double, density: Double) {
        var field = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0)
        field.environment.shadowingScale = shadowing
        field.containers = [PlacedContainer(number: "CSQU3054383", type: .fortyFoot, x: 0, y: 0, cargoDensity: density)]
        let station = field.doseRate(x: plan.backgroundX, y: plan.backgroundY, z: 1, atSeconds: 0)
        var rows: [(PlanPoint, Double, Double)] = []
        for p in plan.points {
            let d = field.doseRate(x: p.xMetres, y: p.yMetres, z: p.heightMetres, atSeconds: 0) / station
            rows.append((p, BackgroundGeometry.shapeFactor(p, plan: plan), d))
        }
        // The judgement's own fit, on noise-free rates (a long count makes counting negligible).
        let model = BackgroundGeometry.explainFit(rows.map { (row: $0.0.row, shape: $0.1, ratio: $0.2) })
        print(String(format: "station %.4f; truth/station from %.3f to %.3f; fit h %.3f, rows ", station,
                     rows.map(\.2).min() ?? 0, rows.map(\.2).max() ?? 0, model.shadowing) + model.rowLevels.map { String(format: "%.3f", $0) }.joined(separator: " "))
        var worst = 0.0
        for (p, s, d) in rows {
            let m = model.rowLevels[p.row] - model.shadowing * s
            worst = max(worst, abs(d - m))
            if p.face == .left && [0, 1, 12, 23].contains(p.column) || p.face == .front && p.column == 2 {
                print(String(format: "%@ col %2d h %.1f  s %.3f  truth %.3f  model %.3f  residual %+.3f", p.face.rawValue, p.column, p.heightMetres,
                             s, d, m, d - m))
            }
        }
        print(String(format: "largest |residual| %.3f of the station background", worst))
    }
}
