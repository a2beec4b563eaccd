import Foundation
import Inspection
import RobotSimulator

/// Where a cell's point sources go, drawn afresh for every container.
enum SourcePlacement: String, Sendable {
    /// 5 cm behind the left or right wall, anywhere along it and at 0.3–2.3 m.
    case wall
    /// In the middle of the cargo, across ±0.3 m of the centre line.
    case midCargo = "mid-cargo"
    /// 5 cm behind a long wall, midway between four grid points.
    case betweenPoints = "between points"
}

struct SourceSpec: Sendable {
    var nuclide: Nuclide
    /// Highest indicated net at any grid point, μSv/h.
    var strength: Double
    var placement: SourcePlacement
    /// Put it on the same long wall as the first source (else the other one).
    var sameFace = true
}

/// What one simulated container came out as.
struct TrialResult {
    var outcome: Outcome
    var remeasures: Int
    var extraSeconds: Double
    /// For each source of strength ≥ the limit: found within 0.5 m along and in height on
    /// the nearest face (the localisation target), else not.
    var located: [Bool]
    var alongErrors: [Double]
    /// The judgement refused the scan (a background outside the plausible band).
    var refused = false
    /// A hot spot was placed outside the container.
    var outsideSpot = false
}

/// One container scanned in the simulator's field with the real plan, screen and
/// judgement: the robot's motion is replaced by a timeline (3.4 s of travel a point, then
/// the profile's settle and counting: 6.7 s a point on the standard profile), the detector
/// by exact Poisson counts of the indicated dose rate.
struct ContainerTrial {
    let plan: ScanPlan
    let instrument: InstrumentRecord
    let screener: PlannedJudgement.Screener?
    var baseField: RadiationField
    let response: EnergyResponse
    let container: PlacedContainer
    /// The containers' effect on the background at each probe position and at the station
    /// (geometry and NORM only, so it holds for every trial of a cell).
    let effects: [(ground: Double, sky: Double, norm: Double)?]
    let stationEffect: (ground: Double, sky: Double, norm: Double)?
    /// Each point's true net without sources at time 0 (below zero where the wall shadows).
    let backgroundNet: [Double]
    /// Each point's cell for a moving survey: the unit vector along its row (yard frame)
    /// and the cell's length (the distance to the next point of the row).
    let cells: [(dx: Double, dy: Double, length: Double)]
    /// A moving survey's time beyond counting: row changes, turns, corners (`ScanBench
    /// --virtual`: 713 s in all for a clean 40 ft, of which 293 s counting and 260 s the
    /// two backgrounds and the walks to the station).
    static let movingOverheadSeconds = 160.0
    /// The robot's time a point beyond its settle and counting: the move (3.4 s a point
    /// on the standard plan, `ScanBench --virtual`).
    static let travelSecondsPerPoint = 3.4

    init(plan: ScanPlan, instrument: InstrumentRecord, field: RadiationField, response: EnergyResponse) {
        self.plan = plan
        self.instrument = instrument
        screener = plan.profile.decision.map { PlannedJudgement.Screener(plan: plan, settings: $0, instrument: instrument) }
        baseField = field
        self.response = response
        container = field.containers[0]
        effects = plan.points.map { field.containerEffect(x: $0.xMetres, y: $0.yMetres, z: $0.heightMetres) }
        stationEffect = field.containerEffect(x: plan.backgroundX, y: plan.backgroundY, z: plan.profile.backgroundHeightMetres)
        let station = field.doseRate(x: plan.backgroundX, y: plan.backgroundY, z: plan.profile.backgroundHeightMetres, atSeconds: 0,
                                     response: response)
        backgroundNet = plan.points.map { field.doseRate(x: $0.xMetres, y: $0.yMetres, z: $0.heightMetres, atSeconds: 0, response: response) - station }
        cells = plan.points.map { p in
            let row = plan.points.filter { $0.face == p.face && $0.row == p.row && abs($0.column - p.column) == 1 }
            guard let q = row.first else { return (1, 0, plan.profile.maxColumnSpacingMetres) }
            let dx = q.xMetres - p.xMetres, dy = q.yMetres - p.yMetres
            let length = (dx * dx + dy * dy).squareRoot()
            return (dx / length, dy / length, length)
        }
    }

    /// The same container and effects in a field that moves differently (walk, rain).
    func with(field: RadiationField) -> ContainerTrial {
        var copy = self
        copy.baseField = field
        return copy
    }

    /// The highest true net over the grid, at time 0, of the field with `set(field, x)`
    /// applied, scaled by bisection on x to `strength` (the net is increasing in x).
    func scale(to strength: Double, field: RadiationField, _ set: (inout RadiationField, Double) -> Void) -> Double {
        func peak(_ x: Double) -> Double {
            var f = field
            set(&f, x)
            let station = f.doseRate(x: plan.backgroundX, y: plan.backgroundY, z: plan.profile.backgroundHeightMetres, atSeconds: 0,
                                     response: response)
            return plan.points.map { f.doseRate(x: $0.xMetres, y: $0.yMetres, z: $0.heightMetres, atSeconds: 0, response: response) }.max()
                .map { $0 - station } ?? 0
        }
        var low = 0.0, high = 1.0
        while peak(high) < strength && high < 1e9 { high *= 2 }
        for _ in 0..<50 {
            let middle = (low + high) / 2
            if peak(middle) < strength { low = middle } else { high = middle }
        }
        return high
    }

    /// Sources for this container, scaled so each has its stated strength: the highest
    /// true net at a grid point as the probe indicates it (or as the true dose, for the
    /// cells that ask what a probe with another response makes of it).
    func draw(_ specs: [SourceSpec], _ random: inout SeededRandom, strengthOnTrueDose: Bool = false) -> [PointSource] {
        let size = container.type
        var sources: [PointSource] = []
        let firstLeft = random.uniform() < 0.5
        let columns = Double(plan.points.filter { $0.face == .left }.map(\.column).max() ?? 0) + 1
        for (n, spec) in specs.enumerated() {
            let left = n == 0 || spec.sameFace ? firstLeft : !firstLeft
            var along = 0.5 + random.uniform() * (size.lengthMetres - 1)
            var height = 0.3 + random.uniform() * 2.0
            let across: Double
            switch spec.placement {
            case .wall: across = left ? 0.05 : size.widthMetres - 0.05
            case .midCargo: across = size.widthMetres / 2 + (random.uniform() - 0.5) * 0.6
            case .betweenPoints:
                across = left ? 0.05 : size.widthMetres - 0.05
                let spacing = size.lengthMetres / columns
                along = (Double(Int(random.uniform() * (columns - 1))) + 1) * spacing
                height = [0.75, 1.25, 1.75, 2.25][Int(random.uniform() * 4) % 4]
            }
            var source = PointSource(nuclide: spec.nuclide, activityMBq: 1, along: along, across: across, height: height)
            // The true net at a point is the dose there minus the station's: with shadowing
            // the wall reads below the station, and the source must make up for it.
            let perMBq = plan.points.map { p -> Double in
                let (a, c, z) = local(p)
                return RadiationField.sourceContribution(source, in: container, toAlong: a, across: c, height: z)
                    * (strengthOnTrueDose ? 1 : response.factor(spec.nuclide))
            }
            func peak(_ activity: Double) -> Double {
                zip(perMBq, backgroundNet).map { activity * $0 + $1 }.max() ?? 0
            }
            var low = 0.0, high = 1.0
            while peak(high) < spec.strength && high < 1e9 { high *= 2 }
            for _ in 0..<60 {
                let middle = (low + high) / 2
                if peak(middle) < spec.strength { low = middle } else { high = middle }
            }
            source.activityMBq = high
            sources.append(source)
        }
        return sources
    }

    func local(_ p: PlanPoint) -> (Double, Double, Double) {
        let (a, c) = SourceLocalisation.local(p, size: plan.container.size, standOff: plan.profile.standOffMetres)
        return (a, c, p.heightMetres)
    }

    func run(sources: [PointSource], random: inout SeededRandom, timeOffset: Double = 0) -> TrialResult {
        var field = baseField
        field.containers[0].sources = sources
        var poisson = ExactPoisson(random: random)
        defer { random = poisson.random }
        let s = instrument.sensitivityCountsPerSecondPerMicrosievertPerHour / instrument.calibrationFactor
        let epoch = 1_800_000_000.0
        var t = timeOffset
        func reading(dose: Double, seconds: Double) -> DoseReading {
            let counts = poisson.draw(s * dose * seconds)
            let rate = Double(counts) / seconds
            let gross = rate / s
            t += seconds
            return DoseReading(counts: counts, seconds: seconds, countRatePerSecond: rate, rawDoseRate: gross / instrument.calibrationFactor,
                               grossDoseRate: gross, instrumentDoseRate: gross, overload: false,
                               takenAt: Date(timeIntervalSince1970: epoch + t - seconds / 2))
        }
        let profile = plan.profile
        var background: [DoseReading] = []
        func measureBackground() {
            for _ in 0..<profile.backgroundReadings {
                let dose = field.doseRate(x: plan.backgroundX, y: plan.backgroundY, z: profile.backgroundHeightMetres,
                                          atSeconds: t + profile.backgroundIntervalSeconds / 2, response: response,
                                          effect: .some(stationEffect))
                background.append(reading(dose: dose, seconds: profile.backgroundIntervalSeconds))
            }
        }
        measureBackground()
        t += 60
        var points: [Int: [DoseReading]] = [:]
        var remeasures: [Int: [DoseReading]] = [:]
        var extra = 0.0
        let counting = Double(profile.readingsPerPoint) * profile.readingSeconds
        if profile.movingSurvey {
            // Each cell counted while driving past it (its dose averaged over 5 places
            // along it), screened; the marked points measured standing after the rows.
            let start = background.reduce(0) { $0 + $1.grossDoseRate } / Double(max(1, background.count))
            let speed = MovingSurvey.speed(plan: plan, backgroundMicrosievertsPerHour: start,
                                           sensitivity: instrument.sensitivityCountsPerSecondPerMicrosievertPerHour)?.metresPerSecond ?? 0.5
            var marked: [Int] = []
            for p in plan.points {
                let cell = cells[p.index]
                let seconds = cell.length / speed
                var dose = 0.0
                for k in 0..<5 {
                    let f = (Double(k) + 0.5) / 5 - 0.5
                    dose += field.doseRate(x: p.xMetres + f * cell.length * cell.dx, y: p.yMetres + f * cell.length * cell.dy, z: p.heightMetres,
                                           atSeconds: t + seconds / 2, response: response, effect: .some(effects[p.index]))
                }
                points[p.index] = [reading(dose: dose / 5, seconds: seconds)]
                if let screener, screener.reason(background: background, points: points, remeasures: remeasures, index: p.index) != nil {
                    marked.append(p.index)
                }
            }
            t += Self.movingOverheadSeconds
            for index in marked {
                let p = plan.points[index]
                t += 20
                let seconds = counting * profile.remeasureDwellFactor
                let dose = field.doseRate(x: p.xMetres, y: p.yMetres, z: p.heightMetres, atSeconds: t + seconds / 2,
                                          response: response, effect: .some(effects[p.index]))
                remeasures[index] = [reading(dose: dose, seconds: seconds)]
                extra += seconds + 20
            }
        }
        for p in plan.points where !profile.movingSurvey {
            t += Self.travelSecondsPerPoint + profile.settleSeconds
            var set: [DoseReading] = []
            for _ in 0..<profile.readingsPerPoint {
                let dose = field.doseRate(x: p.xMetres, y: p.yMetres, z: p.heightMetres, atSeconds: t + profile.readingSeconds / 2,
                                          response: response, effect: .some(effects[p.index]))
                set.append(reading(dose: dose, seconds: profile.readingSeconds))
            }
            points[p.index] = set
            if let screener, screener.reason(background: background, points: points, remeasures: remeasures, index: p.index) != nil {
                let seconds = counting * profile.remeasureDwellFactor
                let dose = field.doseRate(x: p.xMetres, y: p.yMetres, z: p.heightMetres, atSeconds: t + seconds / 2,
                                          response: response, effect: .some(effects[p.index]))
                remeasures[p.index] = [reading(dose: dose, seconds: seconds)]
                extra += seconds
            }
        }
        if let screener {
            // Back to the points the whole container's model finds standing out.
            for index in screener.deferred(background: background, points: points, remeasures: remeasures) {
                let p = plan.points[index]
                t += 30
                let seconds = counting * profile.remeasureDwellFactor
                let dose = field.doseRate(x: p.xMetres, y: p.yMetres, z: p.heightMetres, atSeconds: t + seconds / 2,
                                          response: response, effect: .some(effects[p.index]))
                remeasures[p.index] = [reading(dose: dose, seconds: seconds)]
                extra += seconds + 30
            }
        }
        t += 90
        if profile.backgroundRepeatAtEnd { measureBackground() }
        let outcome: Outcome
        var located: [Bool] = []
        var alongErrors: [Double] = []
        var outsideSpot = false
        do {
            let verdict = try Judgement.evaluate(plan: plan, instrument: instrument, scanDate: 20_261_207, background: background,
                                                 points: points, remeasures: remeasures)
            outcome = verdict.outcome
            if ProcessInfo.processInfo.environment["VERDICT_DEBUG"] != nil, outcome != .pass, sources.isEmpty {
                let flagged = verdict.points.filter { $0.outcome != .pass }
                    .map { String(format: "%d %@ net %.3f model %.3f re %.3f: %@", $0.pointIndex, $0.outcome.rawValue, $0.net,
                                  $0.modelBackground ?? -1, $0.remeasureNet ?? -1, $0.reason ?? "") }
                print("DEBUG \(outcome.rawValue): flags \(verdict.flags) points \(flagged)")
            }
            let spots = outcome >= .anomalous ? SourceLocalisation.hotSpots(plan: plan, verdict: verdict) : []
            outsideSpot = spots.contains { $0.outsideContainer == true }
            if ProcessInfo.processInfo.environment["VERDICT_DEBUG"] != nil, sources.isEmpty, !spots.isEmpty {
                print("SPOTS " + spots.map { String(format: "%@ a %.2f c %.2f h %.2f ±%.2f/%.2f/%.2f", $0.face.rawValue, $0.alongMetres,
                                                    $0.acrossMetres, $0.heightMetres, $0.alongUncertaintyMetres, $0.acrossUncertaintyMetres,
                                                    $0.heightUncertaintyMetres) }.joined(separator: "; "))
            }
            for source in sources where source.activityMBq > 0 {
                let strength = plan.points.map { p -> Double in
                    let (a, c, z) = local(p)
                    return RadiationField.sourceContribution(source, in: field.containers[0], toAlong: a, across: c, height: z)
                        * response.factor(source.nuclide)
                }.max() ?? 0
                guard strength >= profile.limitAboveBackground - 1e-9 else { continue }
                // The face nearest the source, and the position along it (along the
                // container for the long faces, across it for the ends).
                let size = container.type
                let distances: [(ProcedureProfile.Face, Double)] = [(.left, source.across), (.right, size.widthMetres - source.across),
                                                                   (.door, source.along), (.front, size.lengthMetres - source.along)]
                let face = distances.min { $0.1 < $1.1 }?.0 ?? .left
                func position(_ along: Double, _ across: Double) -> Double { face == .left || face == .right ? along : across }
                let truth = position(source.along, source.across)
                let best = spots.filter { $0.face == face }.min {
                    abs(position($0.alongMetres, $0.acrossMetres) - truth) < abs(position($1.alongMetres, $1.acrossMetres) - truth)
                }
                let error = best.map { abs(position($0.alongMetres, $0.acrossMetres) - truth) }
                if let error { alongErrors.append(error) }
                let found = best.map { abs(position($0.alongMetres, $0.acrossMetres) - truth) <= 0.5 && abs($0.heightMetres - source.height) <= 0.5 } ?? false
                if ProcessInfo.processInfo.environment["VERDICT_DEBUG"] != nil, !found {
                    print(String(format: "MISS truth a %.2f c %.2f h %.2f (%@); spots: ", source.along, source.across, source.height, face.rawValue)
                          + spots.map { String(format: "%@ a %.2f c %.2f h %.2f", $0.face.rawValue, $0.alongMetres, $0.acrossMetres, $0.heightMetres) }
                          .joined(separator: "; "))
                }
                located.append(found)
            }
        } catch {
            return TrialResult(outcome: .pass, remeasures: remeasures.count, extraSeconds: extra, located: [], alongErrors: [], refused: true)
        }
        return TrialResult(outcome: outcome, remeasures: remeasures.count, extraSeconds: extra, located: located, alongErrors: alongErrors,
                           outsideSpot: outsideSpot)
    }
}
