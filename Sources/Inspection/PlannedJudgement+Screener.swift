import Foundation

extension PlannedJudgement {
    /// Chooses the points to re-measure, with the same code the verdict uses:
    ///
    /// - **while the scan runs** (`reason`): the point just measured, from the start
    ///   background and the points measured before it: its first reading near or above the
    ///   limit, or standing out from the background model fitted to the points so far
    ///   (refitted at every point for the first 30, then every 5);
    /// - **after the survey** (`deferred`): the points the model of the whole container finds
    ///   standing out that were passed by while they were measured (the first few points of a
    ///   scan have no model yet, and a heavily shadowed wall then hides a source), at most
    ///   `maximumDeferred`, the strongest first; the executor goes back to them.
    ///
    /// Both are pure functions of the readings, so a resumed scan decides as an uninterrupted
    /// one would. Once 3 points are confirmed above the limit the container's verdict is
    /// settled and nothing more is re-measured (a container of NORM above the limit would
    /// otherwise be measured twice over).
    public final class Screener: @unchecked Sendable {
        public let plan: ScanPlan
        public let settings: DecisionSettings
        public let instrument: InstrumentRecord
        /// Confirmed exceedances after which nothing more is re-measured.
        public static let settledAfterExceedances = 3
        /// Points re-measured after the survey at most.
        public static let maximumDeferred = 10
        /// Revision 2: a candidate with this many confirmed anomalies already within two
        /// columns on its face is not re-measured (the hot spot there is settled; a source
        /// deep in the cargo otherwise has twenty or more of its tail points re-measured).
        /// A point near the limit is always re-measured.
        public static let settledAfterNearbyAnomalies = 4
        private let shapes: [Double]
        private let rows: Int
        private let quantiles: Quantiles
        private var cachedFit: (cutoff: Int, start: Double, model: BackgroundModel)?
        private let lock = NSLock()

        public init(plan: ScanPlan, settings: DecisionSettings, instrument: InstrumentRecord) {
            self.plan = plan
            self.settings = settings
            self.instrument = instrument
            shapes = plan.points.map { BackgroundGeometry.shapeFactor($0, plan: plan) }
            rows = (plan.points.map(\.row).max() ?? 0) + 1
            quantiles = Quantiles(profile: plan.profile, settings: settings, points: plan.points.count)
        }

        private var toDose: Double { instrument.calibrationFactor / instrument.sensitivityCountsPerSecondPerMicrosievertPerHour }

        private func station(_ background: [DoseReading]) -> Station? {
            Station(Array(background.prefix(plan.profile.backgroundReadings)), perSet: plan.profile.backgroundReadings)
        }

        /// Why point `index` should be re-measured now, or `nil`. `remeasures` are those
        /// taken so far (points before `index` only count).
        public func reason(background: [DoseReading], points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]],
                           index: Int) -> RemeasureReason? {
            guard plan.profile.remeasureCount > 0, index < plan.points.count, let station = station(background),
                  let data = PointData(index, points[index] ?? [], row: plan.points[index].row, shape: shapes[index]),
                  confirmedExceedances(points: points, remeasures: remeasures, before: index, station: station.startRate)
                    < Self.settledAfterExceedances
            else { return nil }
            let model = fit(points: points, before: index < 30 ? index : index / 5 * 5, station: station.startRate)
            return judge(data, readings: points[index] ?? [], station: station, model: model, remeasures: remeasures)
        }

        /// The points to go back to after the survey, in plan order.
        public func deferred(background: [DoseReading], points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]]) -> [Int] {
            guard plan.profile.remeasureCount > 0, let station = station(background),
                  confirmedExceedances(points: points, remeasures: remeasures, before: plan.points.count, station: station.startRate)
                    < Self.settledAfterExceedances
            else { return [] }
            let model = fit(points: points, before: plan.points.count, station: station.startRate)
            var chosen: [(index: Int, strength: Double)] = []
            for p in plan.points where (remeasures[p.index] ?? []).isEmpty {
                guard let data = PointData(p.index, points[p.index] ?? [], row: p.row, shape: shapes[p.index]),
                      let reason = judge(data, readings: points[p.index] ?? [], station: station, model: model, remeasures: remeasures)
                else { continue }
                chosen.append((p.index, reason == .nearLimit ? .infinity : data.rate))
            }
            return chosen.sorted { $0.strength > $1.strength }.prefix(Self.maximumDeferred).map(\.index).sorted()
        }

        /// Near the limit (against the start background, with room for a background that
        /// falls by up to the drift capacity before the end), or standing out from `model`
        /// (the station level when there is none yet).
        private func judge(_ data: PointData, readings: [DoseReading], station: Station, model: BackgroundModel?,
                           remeasures: [Int: [DoseReading]]) -> RemeasureReason? {
            if readings.contains(where: \.overload) { return .nearLimit }
            let b = station.startRate
            let net = (data.rate - b) * toDose
            let countingU: Double = (data.rate / data.seconds + b / station.startSeconds).squareRoot() * toDose
            let u = countingU.hypot(settings.calibrationRelativeUncertainty * max(net, 0))
            if net > plan.profile.limitAboveBackground - settings.exceedsZoneK * u - settings.driftCapacityFraction * b * toDose {
                return .nearLimit
            }
            var expected = b
            var modelVariance = b / station.startSeconds
            if let model {
                let m = model.rate(station: b, row: data.row, shape: data.shape)
                expected = m.value
                modelVariance += m.uncertainty * m.uncertainty
            }
            let z = significance(gross: data.rate, seconds: data.seconds, background: expected, modelVariance: modelVariance,
                                 residualFraction: settings.modelResidualFraction, k: quantiles.screening)
            guard z > quantiles.screening else { return nil }
            if settings.effectiveRevision >= 2, let model,
               confirmedAnomalies(near: data.index, remeasures: remeasures, station: station, model: model) >= Self.settledAfterNearbyAnomalies {
                return nil
            }
            return .candidate
        }

        /// Re-measured points within two columns of `index` on its face whose re-measure alone
        /// stands out from `model` at the confirmation quantile.
        private func confirmedAnomalies(near index: Int, remeasures: [Int: [DoseReading]], station: Station, model: BackgroundModel) -> Int {
            let p = plan.points[index]
            let b = station.startRate
            var count = 0
            for (i, again) in remeasures where i != index && !again.isEmpty && i < plan.points.count {
                let q = plan.points[i]
                guard q.face == p.face, abs(q.column - p.column) <= 2 else { continue }
                let seconds = again.reduce(0) { $0 + $1.seconds }
                let rate = Double(again.reduce(0) { $0 + Int($1.counts) }) / max(seconds, 1e-9)
                let m = model.rate(station: b, row: q.row, shape: shapes[i])
                let z = significance(gross: rate, seconds: seconds, background: m.value,
                                     modelVariance: m.uncertainty * m.uncertainty + b / station.startSeconds,
                                     residualFraction: settings.modelResidualFraction, k: quantiles.confirmation)
                if z > quantiles.confirmation { count += 1 }
            }
            return count
        }

        /// Points before `index` whose first reading and re-measure pooled are above the limit.
        private func confirmedExceedances(points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]], before index: Int,
                                          station b: Double) -> Int {
            var count = 0
            for (i, again) in remeasures where i < index && !again.isEmpty {
                let all = (points[i] ?? []) + again
                let seconds = all.reduce(0) { $0 + $1.seconds }
                let rate = Double(all.reduce(0) { $0 + Int($1.counts) }) / max(seconds, 1e-9)
                if all.contains(where: \.overload) || (rate - b) * toDose > plan.profile.limitAboveBackground { count += 1 }
            }
            return count
        }

        /// The model fitted to the points before `cutoff` (in plan order), or `nil` while
        /// there are fewer than `minimumFitPoints`.
        private func fit(points: [Int: [DoseReading]], before cutoff: Int, station b: Double) -> BackgroundModel? {
            if let cached = lock.withLock({ cachedFit }), cached.cutoff == cutoff, cached.start == b {
                return cached.model
            }
            let samples = plan.points.prefix(cutoff).compactMap { p -> BackgroundGeometry.Sample? in
                PointData(p.index, points[p.index] ?? [], row: p.row, shape: shapes[p.index])
                    .map { .init(gross: $0.rate, seconds: $0.seconds, station: b, row: $0.row, shape: $0.shape) }
            }
            guard samples.count >= settings.minimumFitPoints,
                  let model = BackgroundGeometry.fit(samples, rows: rows, residualFraction: settings.modelResidualFraction)
            else { return nil }
            lock.withLock { cachedFit = (cutoff, b, model) }
            return model
        }
    }
}
