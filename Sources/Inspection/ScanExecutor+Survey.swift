import Foundation
import RobotControl

/// The moving survey's motion (`MovingSurvey`): each face row by row, the lift holding the
/// row's height and the chassis driving from the row's first stand to its last at the
/// survey speed, forwards and backwards in turn so the probe keeps facing the wall.
extension ScanExecutor {
    /// The rows to drive: per face in plan order, per height in the order the plan's first
    /// column takes them, each row's points in plan (column) order.
    func surveyRows() -> [[PlanPoint]] {
        var rows: [[PlanPoint]] = []
        var faces: [ProcedureProfile.Face] = []
        for point in plan.points where !faces.contains(point.face) { faces.append(point.face) }
        for face in faces {
            let onFace = plan.points.filter { $0.face == face }
            var heights: [Int] = []
            for point in onFace where !heights.contains(point.row) { heights.append(point.row) }
            for row in heights { rows.append(onFace.filter { $0.row == row }.sorted { $0.column < $1.column }) }
        }
        return rows
    }

    /// The survey speed at the background just measured, or a refusal with the numbers
    /// (before the survey moves).
    func surveySpeed(background: [DoseReading]) throws(Failure) -> Double {
        let profile = plan.profile
        let start = background.prefix(profile.backgroundReadings)
        let b = CountingStatistics.meanAndDeviation(start.map(\.grossDoseRate)).mean
        let sensitivity = instrument.sensitivityCountsPerSecondPerMicrosievertPerHour
        guard let choice = MovingSurvey.speed(plan: plan, backgroundMicrosievertsPerHour: b, sensitivity: sensitivity) else {
            let problem = MovingSurvey.problem(profile: profile, backgroundMicrosievertsPerHour: b, sensitivity: sensitivity,
                                               detection: profile.surveyDetectionMicrosievertsPerHour ?? 0.10, points: plan.points.count)
            throw .step(problem ?? "the moving survey has no speed for this plan")
        }
        update {
            $0.note = String(format: "moving survey at %.2f m/s: %.2f s of counting a %.2f m cell marks +%.2f μSv/h (95 %%) at %.3f μSv/h",
                             choice.metresPerSecond, choice.cellSeconds, choice.cellMetres, profile.surveyDetectionMicrosievertsPerHour ?? 0, b)
        }
        return choice.metresPerSecond
    }

    /// Drives one row (forwards or backwards along it) and returns its cells' counts.
    func driveRow(_ row: [PlanPoint], forward: Bool, speed: Double) async throws(Failure) -> [Int: (counts: UInt32, seconds: Double, overload: Bool)] {
        guard let start = forward ? row.first : row.last, let end = forward ? row.last : row.first else { return [:] }
        try await goTo(start, via: plan.waypoints.filter { $0.beforePoint == start.index })
        // Face along the row (its first stand to its last) whichever way it is driven: the
        // walk keeps the heading, and a robot that arrived at an angle would leave the row.
        if let first = row.first, let last = row.last, row.count > 1 {
            let axis = atan2(last.standY - first.standY, last.standX - first.standX) * 180 / .pi
            if Self.headingError(loop.snapshot().headingDegrees, axis) > 0.5 {
                _ = try await perform(.turnTo(headingDegrees: axis), timeout: 60)
            }
        }
        let before = loop.countSamples().last?.sequence ?? 0
        // Along the heading the robot holds (backwards when the row runs against it),
        // recomputed from where it stands after any stop: a relative walk retried whole
        // would overshoot the row's end.
        var tries = 0
        while true {
            let s = loop.snapshot()
            let h = s.headingDegrees * .pi / 180
            let remaining = (end.standX - s.xMetres) * cos(h) + (end.standY - s.yMetres) * sin(h)
            if abs(remaining) < 0.01 { break }
            tries += 1
            if tries > 6 { throw .step("the survey row to point \(end.index) could not be driven: \(tries - 1) tries") }
            _ = try await performOnce(.walk(metres: remaining, speedMetresPerSecond: speed),
                                      timeout: abs(remaining) / speed / sleeper.timeScale + 30)
        }
        return MovingSurvey.bin(loop.countSamples(after: before), row: row, mount: plan.probeMount)
    }

    /// A reading from a cell's counts, as the loop would give it for a dwell (dead time
    /// corrected, calibrated).
    func cellReading(_ cell: (counts: UInt32, seconds: Double, overload: Bool)) -> DoseReading {
        let m = Double(cell.counts) / cell.seconds
        let n = m / max(1e-9, 1 - m * loop.configuration.detectorDeadTimeSeconds)
        let raw = n / instrument.sensitivityCountsPerSecondPerMicrosievertPerHour
        return DoseReading(counts: cell.counts, seconds: cell.seconds, countRatePerSecond: n, rawDoseRate: raw,
                           grossDoseRate: raw * instrument.calibrationFactor, instrumentDoseRate: raw * instrument.calibrationFactor,
                           overload: cell.overload, takenAt: sleeper.now())
    }

    /// Runs one command once. On a safety stop waits for the officer's reset; returns
    /// whether the command completed (the caller decides what to do next from where the
    /// robot now stands: a relative move retried whole would overshoot).
    func performOnce(_ command: RobotCommand, timeout: Double) async throws(Failure) -> Bool {
        try await checkPauseAndAbort()
        let feedback = await loop.run(command, timeout: timeout)
        if feedback?.state == .done { return true }
        if Task.isCancelled { throw .interrupted }
        if pauseIfThePathStaysBlocked(feedback) { return false }
        interruptions += 1
        if let cause = loop.snapshot().stopCause {
            try await waitOutStop(cause)
        } else {
            await sleeper.sleep(seconds: 0.5 * sleeper.timeScale)
        }
        return false
    }
}
