import Foundation

extension PlannedJudgement {
    /// The verdict by rule 2. Refuses (as rule 1 does) an expired calibration under the
    /// refuse policy, a missing or overloaded background and a start background outside the
    /// plausible band; everything else gets a verdict, "inconclusive" included.
    static func evaluate(plan: ScanPlan, settings: DecisionSettings, instrument: InstrumentRecord, scanDate: UInt32,
                         background: [DoseReading], points: [Int: [DoseReading]],
                         remeasures: [Int: [DoseReading]]) throws(JudgementRefusal) -> Verdict {
        let profile = plan.profile
        var flags = try Judgement.checkInstrumentAndBackground(profile: profile, instrument: instrument, scanDate: scanDate,
                                                               background: background)
        if instrument.lastCheck == nil {
            flags.append("no check-source test of the detector in the 24 h before the scan (robotctl check-source): its response is "
                         + "known only from its calibration")
        }
        let perSet = profile.backgroundReadings
        let startSet = Array(background.prefix(perSet))
        let endSet = Array(background.dropFirst(perSet))
        let startMean = CountingStatistics.meanAndDeviation(startSet.map(\.grossDoseRate)).mean
        // Outside the band beyond counting (3 standard uncertainties): a station at the
        // band's edge is not refused on a coin toss.
        let startCounts = Double(startSet.reduce(0) { $0 + Int($1.counts) })
        let startMeanU = startMean / max(startCounts, 1).squareRoot()
        guard startMean + 3 * startMeanU >= profile.backgroundPlausibleMinimum,
              startMean - 3 * startMeanU <= profile.backgroundPlausibleMaximum else {
            throw .implausibleBackground(mean: startMean, minimum: profile.backgroundPlausibleMinimum, maximum: profile.backgroundPlausibleMaximum)
        }
        guard let station = Station(background, perSet: perSet) else { throw .noBackground }
        let (bgMean, bgDeviation) = CountingStatistics.meanAndDeviation(background.map(\.grossDoseRate))
        let toDose = instrument.calibrationFactor / instrument.sensitivityCountsPerSecondPerMicrosievertPerHour
        let limit = profile.limitAboveBackground

        // Has the background moved more than the straight line carries?
        var backgroundMoved: [String] = []
        if let end = station.end {
            let change = (end.rate - station.startRate) / max(station.startRate, 1e-9)
            if abs(change) > settings.driftCapacityFraction {
                backgroundMoved.append(String(format: "the station background moved %+.0f %% between the start and the end of the scan "
                    + "(the model carries ±%.0f %%): the scan must be measured again", 100 * change, 100 * settings.driftCapacityFraction))
            }
        }
        for (name, set) in [("start", startSet), ("end", endSet)] where set.count >= 3 {
            let dispersion = Self.dispersion(set)
            if dispersion.z > CountingStatistics.quantile(alpha: 0.001) {
                backgroundMoved.append(String(format: "the %@ background readings vary more than counting allows (χ² %.1f for %d degrees of "
                    + "freedom; the background was moving): the scan must be measured again", name, dispersion.chi2, set.count - 1))
            }
        }
        let residual = settings.modelResidualFraction.hypot(station.driftFraction)

        // The background model at the container.
        let data = plan.points.compactMap { p in
            PointData(p.index, points[p.index] ?? [], row: p.row, shape: BackgroundGeometry.shapeFactor(p, plan: plan))
        }
        let q = Quantiles(profile: profile, settings: settings, points: plan.points.count)
        let rows = (plan.points.map(\.row).max() ?? 0) + 1
        let model = BackgroundGeometry.fit(data.map { .init(gross: $0.rate, seconds: $0.seconds, station: station.at($0.time).rate, row: $0.row,
                                                            shape: $0.shape) }, rows: rows, residualFraction: residual)
        let level = model ?? .station
        var expected: [Int: (rate: Double, variance: Double)] = [:]
        for d in data {
            let st = station.at(d.time)
            let m = level.rate(station: st.rate, row: d.row, shape: d.shape)
            let scale = level.scale(row: d.row, shape: d.shape)
            expected[d.index] = (m.value, m.uncertainty * m.uncertainty + st.variance * scale * scale)
        }

        // The median of a run of points' residuals relative to the model, and its standard
        // uncertainty: counting, and (for short runs) the model's own, which moves them together.
        func runShift(_ slice: ArraySlice<PointData>, withModel: Bool) -> (median: Double, sigma: Double)? {
            let relative = slice.compactMap { d in expected[d.index].map { (d.rate - $0.rate) / max($0.rate, 1e-9) } }.sorted()
            let counting = slice.compactMap { d in expected[d.index].map { ($0.rate / d.seconds).squareRoot() / max($0.rate, 1e-9) } }.sorted()
            let model = slice.compactMap { d in expected[d.index].map { $0.variance.squareRoot() / max($0.rate, 1e-9) } }.sorted()
            guard relative.count >= 5 else { return nil }
            let sigma = 1.2533 * counting[counting.count / 2] / Double(relative.count).squareRoot()
            return (relative[relative.count / 2], withModel ? sigma.hypot(model[model.count / 2]) : sigma)
        }
        func runs(_ count: Int) -> [ArraySlice<PointData>] {
            (0..<count).map { i in data[(i * data.count / count)..<((i + 1) * data.count / count)] }
        }

        // Watch the background through the scan: runs of consecutive points whose median,
        // after the model, moved more than the model carries.
        var movedRuns: [(range: ClosedRange<Int>, shift: Double)] = []
        for slice in runs(max(1, data.count / settings.windowPoints)) {
            guard let shift = runShift(slice, withModel: true), let first = slice.first, let last = slice.last,
                  abs(shift.median) > max(settings.windowCapacityFraction, 4 * shift.sigma) else { continue }
            movedRuns.append((first.index...last.index, shift.median))
        }
        // And in thirds of the scan: a slow hump (a shower that starts and stops within the
        // scan) can stay under the runs' threshold in every run and still move the level.
        // Only when the station moved too (by half the runs' capacity): a source next door
        // raises one face, and is a finding, not a moving background.
        let stationMoved = station.end.map { abs($0.rate - station.startRate) / max(station.startRate, 1e-9) } ?? 0
        let thirds = data.count >= 15 ? runs(3).compactMap { runShift($0, withModel: false) } : []
        if stationMoved > settings.windowCapacityFraction / 2,
           let high = thirds.max(by: { $0.median < $1.median }), let low = thirds.min(by: { $0.median < $1.median }),
           high.median - low.median > max(settings.windowCapacityFraction, 4 * high.sigma.hypot(low.sigma)) {
            backgroundMoved.append(String(format: "the level at the container moved by %.0f %% between thirds of the scan (rain?): "
                + "the scan must be measured again", 100 * (high.median - low.median)))
        }
        // When the background moved in time (the station, its readings, the thirds), an
        // anomaly must stand out by more than twice as much: a shower's onset reads like a
        // source wherever the robot happens to be. A run of points that moved is not such
        // evidence on its own (a source next door raises one face); its points are judged
        // against the run's own level instead.
        // Revision 2: the station moving beyond its own counting (3σ of the difference) is
        // movement in time too. A shower that rose and fell back within the scan leaves the
        // ends close and the middle high, under every capacity, and its hump reads like a
        // source wherever it sits.
        let stationSignificant = station.end.map { end in
            abs(end.rate - station.startRate) > 3 * (station.startRate / station.startSeconds + end.rate / end.seconds).squareRoot()
        } ?? false
        let revised = settings.effectiveRevision >= 2
        let movedInTime = !backgroundMoved.isEmpty || (revised && stationSignificant)
        let movement = max(stationMoved, (thirds.map(\.median).max() ?? 0) - (thirds.map(\.median).min() ?? 0))
        // Revision 2, when the background moved in time: each point's level from the points
        // measured around it (the run's width, centred, itself left out), the median of their
        // residuals after the model. A source raises a few of them; the median follows the
        // background.
        func localShift(_ position: Int) -> Double? {
            let half = settings.windowPoints / 2
            let lower = max(0, position - half), upper = min(data.count, position + half + 1)
            let around = Array(data[lower..<position]) + Array(data[(position + 1)..<upper])
            return runShift(around[...], withModel: true)?.median
        }
        for moved in movedRuns {
            backgroundMoved.append(String(format: "points %d to %d: the background at the container moved %+.0f %% while they were measured "
                + "(rain, a vehicle beside the container?): measure them again", moved.range.lowerBound, moved.range.upperBound, 100 * moved.shift))
        }

        // Every point.
        var judged: [PointJudgement] = []
        for (position, d) in data.enumerated() {
            let readings = points[d.index] ?? []
            let again = remeasures[d.index] ?? []
            let st = station.at(d.time)
            guard var model = expected[d.index] else { continue }
            let containerModel = model.rate
            let shift = movedRuns.first { $0.range.contains(d.index) }?.shift
            let level = revised && movedInTime ? localShift(position) ?? shift : shift
            if let level { model.rate *= 1 + level }
            let gross = readings.map(\.grossDoseRate)
            let (mean, deviation) = CountingStatistics.meanAndDeviation(gross)
            let net = (d.rate - st.rate) * toDose
            let countingU = (d.rate / d.seconds + st.variance).squareRoot() * toDose
            let u = countingU.hypot(settings.calibrationRelativeUncertainty * max(net, 0))
            var judgement = PointJudgement(pointIndex: d.index, grossMean: mean, grossMax: gross.max() ?? mean, grossDeviation: deviation,
                                           net: net, netUncertainty: u, outcome: .pass)
            // Revision 2 keeps the container's model and the level apart (hot spots are fitted
            // to the excess over the model: a level raised by a broad excess would split it).
            judgement.modelBackground = (revised ? containerModel : model.rate) * toDose
            if revised, let level { judgement.levelShiftFraction = level }
            let againRate = again.isEmpty ? nil : Double(again.reduce(0) { $0 + Int($1.counts) }) / max(again.reduce(0) { $0 + $1.seconds }, 1e-9)
            let againSeconds = again.reduce(0) { $0 + $1.seconds }
            // "Exceeds": against the station background, three zones.
            if readings.contains(where: \.overload) || again.contains(where: \.overload) {
                judgement.outcome = .exceeds
                judgement.reason = "exceeds (reading clipped): the detector was overloaded here, far above the limit"
            } else if profile.movingSurvey, let againRate {
                // A moving survey's first reading is a cell's average over its stretch of the
                // row: the point measured standing decides the limit alone (its 50 % point at L).
                let againNet = (againRate - st.rate) * toDose
                judgement.remeasureNet = againNet
                if againNet > limit {
                    judgement.outcome = .exceeds
                    judgement.reason = "measured standing above the limit (moving survey: the standing measurement decides)"
                }
            } else if net > limit - settings.exceedsZoneK * u {
                if let againRate {
                    let againNet = (againRate - st.rate) * toDose
                    let againU = (againRate / againSeconds + st.variance).squareRoot() * toDose
                    let pooledRate = (d.counts + againRate * againSeconds) / (d.seconds + againSeconds)
                    let pooled = (pooledRate - st.rate) * toDose
                    judgement.remeasureNet = againNet
                    judgement.pooledNet = pooled
                    if abs(net - againNet) > 4 * countingU.hypot(againU) {
                        judgement.outcome = againNet > limit ? .exceeds : .pass
                        judgement.reason = "the first reading and the re-measure disagree beyond counting; decided on the re-measure"
                    } else if pooled > limit {
                        judgement.outcome = .exceeds
                        judgement.reason = "pooled net above the limit"
                    }
                } else if profile.remeasureCount == 0 {
                    if net > limit {
                        judgement.outcome = .exceeds
                        judgement.reason = "above the limit (single-stage profile: no re-measure planned)"
                    }
                } else if net > limit {
                    judgement.outcome = .inconclusive
                    judgement.reason = "above the limit at its first reading, but its re-measure is missing: measure this point again"
                }
            }
            // "Anomalous": against the background modelled here, two stages. A point that
            // may be above the limit stays inconclusive: "within the limit" is not known.
            if judgement.outcome == .pass || (judgement.outcome == .inconclusive && judgement.reason?.hasPrefix("above the limit") != true) {
                let first = significance(gross: d.rate, seconds: d.seconds, background: model.rate, modelVariance: model.variance,
                                         residualFraction: residual, k: q.screening)
                let single = significance(gross: d.rate, seconds: d.seconds, background: model.rate, modelVariance: model.variance,
                                          residualFraction: residual, k: q.singleStage)
                var confirmed = false
                var remeasured = false
                if let againRate, againSeconds > 0 {
                    remeasured = true
                    judgement.remeasureNet = judgement.remeasureNet ?? (againRate - st.rate) * toDose
                    let second = significance(gross: againRate, seconds: againSeconds, background: model.rate, modelVariance: model.variance,
                                              residualFraction: residual, k: q.confirmation)
                    confirmed = first > q.screening && second > q.confirmation
                }
                // A re-measured point is decided by its re-measure; one the screen passed by
                // (its model then was another) only beyond the single-stage threshold.
                // Revision 2 asks the re-measure: the first reading was chosen for being high.
                let standing = revised ? (againRate ?? d.rate) : d.rate
                let excess = (standing - model.rate) / max(model.rate, 1e-9)
                if (confirmed || (!remeasured && single > q.singleStage)) && movedInTime && excess < 2 * movement {
                    judgement.outcome = .inconclusive
                    judgement.reason = String(format: "stands out by %.0f %%, less than twice what the background moved (%.0f %%): measure again",
                                              100 * excess, 100 * movement)
                } else if confirmed || (!remeasured && single > q.singleStage) {
                    judgement.outcome = .anomalous
                    judgement.reason = confirmed ? "above the background modelled here, confirmed by its re-measure"
                        : "above the background modelled here beyond the single-stage threshold"
                } else if shift != nil && judgement.outcome == .pass {
                    judgement.outcome = .inconclusive
                    judgement.reason = "measured while the background moved: measure again"
                }
            }
            judged.append(judgement)
        }

        // A uniform excess over the whole container, against the station. A point that may
        // be above the limit (its re-measure missing) keeps the container from "anomalous
        // (within the limit)": it is inconclusive until measured again, unless one exceeds.
        var containerOutcome = judged.map(\.outcome).max() ?? .pass
        let possiblyAbove = judged.contains { $0.outcome == .inconclusive && $0.reason?.hasPrefix("above the limit") == true }
        if let model {
            // The level's uncertainty: the fit, the station's counting, the straight line's
            // error over the scan and the model's own (all relative to the station).
            let stationRelative = (1 / (station.startRate * station.startSeconds)).squareRoot()
            let u = model.siteLevelUncertainty.hypot(stationRelative).hypot(residual)
            let z = (model.siteLevel - 1 - settings.siteOffsetAllowance) / u
            if z > q.confirmation {
                let text = String(format: "the container's level is %+.0f %% of the station background (%+.3f μSv/h) over its faces, beyond the "
                    + "site allowance of %.0f %%: NORM cargo or contaminated bulk", 100 * (model.siteLevel - 1),
                    (model.siteLevel - 1) * station.startRate * toDose, 100 * settings.siteOffsetAllowance)
                if backgroundMoved.isEmpty {
                    flags.append("uniform excess: " + text)
                    containerOutcome = max(containerOutcome, .anomalous)
                } else {
                    flags.append("uniform excess not judged (the background moved): " + text)
                }
            }
        }
        if !backgroundMoved.isEmpty {
            flags += backgroundMoved
            containerOutcome = max(containerOutcome, .inconclusive)
        }
        if possiblyAbove && containerOutcome != .exceeds { containerOutcome = .inconclusive }
        for j in judged where j.outcome == .inconclusive && j.reason?.hasPrefix("above the limit") == true {
            flags.append("point \(j.pointIndex): " + (j.reason ?? ""))
        }

        // Characteristic limits for a typical point, at the start background.
        let b = station.startRate
        let t1 = Double(profile.readingsPerPoint) * profile.readingSeconds
        let t2 = t1 * profile.remeasureDwellFactor
        let limits = characteristicLimits(background: b, backgroundSeconds: station.startSeconds, firstSeconds: t1, remeasureSeconds: t2,
                                          residual: residual, quantiles: q)
        var faces: [Verdict.FaceSummary] = []
        for face in profile.faces {
            let onFace = judged.filter { plan.points[$0.pointIndex].face == face }
            guard let top = onFace.max(by: { $0.grossMean < $1.grossMean }) else { continue }
            faces.append(Verdict.FaceSummary(face: face, meanGross: onFace.reduce(0) { $0 + $1.grossMean } / Double(onFace.count),
                                             maxGross: top.grossMean, maxPointIndex: top.pointIndex))
        }
        let hottest = judged.max { $0.net < $1.net }
        let record = DecisionRuleRecord(rule: DecisionSettings.ruleName, settings: settings, containerAlpha: profile.alpha,
                                        screeningAlpha: q.screeningAlpha, screeningK: q.screening, confirmationK: q.confirmation,
                                        singleStageK: q.singleStage, betaK: q.beta, background: model,
                                        stationStartCountsPerSecond: station.startRate, stationEndCountsPerSecond: station.end?.rate)
        return Verdict(outcome: containerOutcome, backgroundMean: bgMean, backgroundDeviation: bgDeviation, backgroundReadings: background.count,
                       limit: limit, pointAlpha: q.screeningAlpha, k: q.screening, decisionThreshold: limits.threshold * toDose,
                       detectionLimit: limits.detection * toDose, maxNet: hottest?.net ?? 0, maxNetPointIndex: hottest?.pointIndex,
                       points: judged, faces: faces, flags: flags,
                       backgroundDrift: station.end.map { ($0.rate - station.startRate) * toDose } ?? 0, rule: record)
    }

    /// The screening decision threshold (net counts per second over a first reading) and
    /// the detection limit of the two stages together: the net whose probability of being
    /// screened and then confirmed is 1 − β.
    static func characteristicLimits(background b: Double, backgroundSeconds: Double, firstSeconds t1: Double, remeasureSeconds t2: Double,
                                     residual: Double, quantiles q: Quantiles) -> (threshold: Double, detection: Double) {
        func sigma(_ net: Double, _ t: Double) -> Double {
            ((b + net) / t + pow(residual * b, 2) + b / backgroundSeconds).squareRoot()
        }
        func threshold(_ k: Double, _ t: Double) -> Double { k * sigma(0, t) + max(0, k * k - 1) / 6 / t }
        let first = threshold(q.screening, t1)
        let second = threshold(q.confirmation, t2)
        func detected(_ x: Double) -> Double {
            let p1 = 0.5 * erfc(-(x - first) / sigma(x, t1) / 2.squareRoot())
            let p2 = 0.5 * erfc(-(x - second) / sigma(x, t2) / 2.squareRoot())
            return p1 * p2
        }
        var low = 0.0, high = 100 * max(first, 1e-6)
        for _ in 0..<80 {
            let middle = (low + high) / 2
            if detected(middle) < 1 - q.betaProbability { low = middle } else { high = middle }
        }
        return (first, high)
    }

    /// How much more a set of background readings varies than Poisson counting allows: the
    /// χ² dispersion statistic and its normal score (Wilson–Hilferty); the rule tests it at 0.1 %.
    static func dispersion(_ set: [DoseReading]) -> (chi2: Double, z: Double) {
        let seconds = set.reduce(0) { $0 + $1.seconds }
        let rate = Double(set.reduce(0) { $0 + Int($1.counts) }) / max(seconds, 1e-9)
        guard rate > 0, set.count > 1 else { return (0, -.infinity) }
        let chi2 = set.reduce(0.0) { sum, r in
            let expected = rate * r.seconds
            return sum + pow(Double(r.counts) - expected, 2) / expected
        }
        let df = Double(set.count - 1)
        return (chi2, (pow(chi2 / df, 1.0 / 3) - (1 - 2 / (9 * df))) / (2 / (9 * df)).squareRoot())
    }
}
