import FirmwareProtocol
import Foundation
import RobotControl

/// Runs a scan plan through the control loop's command API: background, then every
/// point (move, settle, measure), a re-measure where a point exceeds, then the verdict.
/// Every reading goes to the record as it is taken; a run started on a record that
/// already holds readings carries on after them (after a fault or a restart).
public final class ScanExecutor: @unchecked Sendable {
    public enum Phase: String, Sendable, Codable {
        case starting, background, survey, computing, done, aborted, failed
    }

    public struct Progress: Sendable, Equatable, Codable {
        public var phase: Phase
        public var completedPoints: Int
        public var totalPoints: Int
        public var backgroundReadings: Int
        public var paused: Bool
        /// A safety stop is waiting for an officer's reset.
        public var waitingForReset: String?
        /// Why the scan paused, when not by an officer's pause (the phone silent too long,
        /// the lease taken over).
        public var pausedReason: String?
        /// What the scan did that an officer should know (a background measured again, a
        /// reading set cut short and taken again).
        public var note: String?
        public var etaSeconds: Double
    }

    public enum Failure: Error, Sendable, CustomStringConvertible {
        case aborted
        /// The task running the scan was cancelled (robotd shutting down): the scan stops
        /// where it is and stays resumable.
        case interrupted
        case refused(JudgementRefusal)
        case record(String)
        case step(String)
        /// The battery cannot carry the scan on (`BatteryBudget`): it stopped before the
        /// next point, or did not start, and can be resumed once the robot is charged.
        case lowBattery(String)

        public var description: String {
            switch self {
            case .aborted: return "the scan was aborted"
            case .interrupted: return "the scan was interrupted (controller shutting down); it can be resumed"
            case .refused(let r): return "cannot compute a verdict: \(r)"
            case .record(let m): return "the record could not be written: \(m)"
            case .step(let m): return m
            case .lowBattery(let m): return m
            }
        }
    }

    public let plan: ScanPlan
    public let instrument: InstrumentRecord
    let loop: ControlLoop
    private let record: ScanRecord
    let sleeper: Sleeper
    private let lock = NSLock()
    private var state: Progress
    private var abortRequested = false
    private var pausedFlag = false
    private var secondsPerPoint = 10.0
    /// Safety stops waited out and commands retried so far: a reading set during which
    /// this changed was cut short.
    var interruptions = 0

    public init(loop: ControlLoop, plan: ScanPlan, instrument: InstrumentRecord, record: ScanRecord, sleeper: Sleeper = Sleeper()) {
        self.loop = loop
        self.plan = plan
        self.instrument = instrument
        self.record = record
        self.sleeper = sleeper
        state = Progress(phase: .starting, completedPoints: 0, totalPoints: plan.points.count, backgroundReadings: 0,
                         paused: false, waitingForReset: nil, pausedReason: nil, note: nil, etaSeconds: 0)
    }

    public var progress: Progress { lock.withLock { state } }
    public func pause(reason: String? = nil) {
        lock.withLock {
            pausedFlag = true
            state.paused = true
            state.pausedReason = reason
        }
    }
    public func resume() { lock.withLock { pausedFlag = false; state.paused = false; state.pausedReason = nil } }
    public func abort() { lock.withLock { abortRequested = true } }

    func update(_ change: (inout Progress) -> Void) { lock.withLock { change(&state) } }

    /// Runs (or carries on with) the scan and returns the verdict.
    public func run(scanDate: UInt32) async throws(Failure) -> Verdict {
        let profile = plan.profile
        let perPoint = profile.readingsPerPoint
        do {
            var accepted = try await record.accepted(readingsPerPoint: perPoint)
            var epoch = accepted.epoch
            var background = accepted.background
            var points = accepted.points
            var remeasures = accepted.remeasures
            var complete = accepted.completePoints
            update { $0.phase = .background; $0.backgroundReadings = background.count }

            // A background measured long ago no longer describes the yard (drift, rain): a
            // resumed scan with points still to measure measures it again and surveys again;
            // the earlier round's readings stay in the record, superseded.
            if background.count >= profile.backgroundReadings, complete.count < plan.points.count,
               let taken = accepted.backgroundTakenAt, sleeper.now().timeIntervalSince(taken) * sleeper.timeScale > profile.backgroundMaxAgeSeconds {
                let minutes = Int(sleeper.now().timeIntervalSince(taken) * sleeper.timeScale / 60)
                update { $0.note = "the background is \(minutes) min old (limit \(Int(profile.backgroundMaxAgeSeconds / 60)) min): "
                    + "measuring it again and surveying again; the earlier readings are kept, superseded" }
                epoch += 1
                background = []
                points = [:]
                remeasures = [:]
                complete = []
                accepted.nextAttempt = [:]
            }
            func nextOrdinal(_ kind: RecordedReading.Kind, _ index: Int) -> Int {
                let next = accepted.nextOrdinal(kind, index)
                accepted.nextOrdinal[AcceptedReadings.ordinalKey(kind, index)] = next + 1
                return next
            }

            try await checkBatteryBeforeStarting(remaining: Set(plan.points.indices).subtracting(complete),
                                           backgroundFirst: background.count < profile.backgroundReadings)
            if background.count < profile.backgroundReadings {
                try await ensureHomed()
                // From wherever the robot stands (a scan planned with the robot beside the
                // container, or resumed): round the container if the straight way is not clear.
                for stop in route(via: [], to: plan.backgroundX, plan.backgroundY) {
                    try await move(x: stop.x, y: stop.y, height: nil)
                }
                try await move(x: plan.backgroundX, y: plan.backgroundY, height: profile.backgroundHeightMetres)
                while background.count < profile.backgroundReadings {
                    let reading = try await measure(seconds: profile.backgroundIntervalSeconds)
                    try await record.appendBackground(reading, ordinal: nextOrdinal(.background, -1), set: epoch)
                    background.append(reading)
                    update { $0.backgroundReadings = background.count }
                }
            }
            let backgroundMean = CountingStatistics.meanAndDeviation(background.prefix(profile.backgroundReadings).map(\.grossDoseRate)).mean
            update {
                $0.phase = .survey
                $0.completedPoints = complete.count
            }
            try await ensureHomed()
            let screener = profile.decision.map { PlannedJudgement.Screener(plan: plan, settings: $0, instrument: instrument) }
            if profile.movingSurvey {
                // The moving survey: every cell's counts are its point's first reading; the
                // loop below then measures standing every point it marks (and any cell a
                // row did not cover).
                let speed = try surveySpeed(background: background)
                let rows = surveyRows()
                for (number, row) in rows.enumerated() where row.contains(where: { !complete.contains($0.index) }) {
                    // Forwards on a face's first row, then backwards and forwards in turn.
                    let onFace = rows[..<number].filter { $0.first?.face == row.first?.face }.count
                    try checkBatteryBeforeMoving(on: "the survey row of point \(row[0].index)", completed: complete.count)
                    let cells = try await driveRow(row, forward: onFace % 2 == 0, speed: speed)
                    for point in row where !complete.contains(point.index) {
                        guard let cell = cells[point.index], cell.seconds >= 0.2 else { continue }
                        let attempt = accepted.nextAttempt[point.index] ?? 0
                        let reading = cellReading(cell)
                        try await record.appendPoint(point.index, reading, ordinal: nextOrdinal(.point, point.index), remeasure: false,
                                                     set: RecordedReading.setNumber(epoch: epoch, attempt: attempt))
                        accepted.nextAttempt[point.index] = attempt + 1
                        points[point.index] = [reading]
                        complete.insert(point.index)
                    }
                    update { $0.completedPoints = complete.count }
                }
            }
            let started = sleeper.now()
            var done = 0
            for point in plan.points {
                let needsRemeasure = { (r: [DoseReading]) -> Bool in
                    guard profile.remeasureCount > 0 else { return false }
                    if let screener {
                        // Rule 2: the same screen the verdict is computed with, on the
                        // points measured before this one.
                        var sofar = points
                        sofar[point.index] = r
                        return screener.reason(background: background, points: sofar, remeasures: remeasures, index: point.index) != nil
                    }
                    return CountingStatistics.meanAndDeviation(r.map(\.grossDoseRate)).mean > backgroundMean + profile.limitAboveBackground
                }
                let remeasured = remeasures[point.index]?.count ?? 0
                if complete.contains(point.index), !needsRemeasure(points[point.index] ?? []) || remeasured >= profile.remeasureCount {
                    continue
                }
                if !complete.contains(point.index) {
                    // One whole set per visit. A set cut short (a stop and reset on the
                    // way, a restart) is kept in the record and never topped up: the
                    // point is measured again from its first reading.
                    var attempt = accepted.nextAttempt[point.index] ?? 0
                    var overloadCuts = 0
                    var readings: [DoseReading] = []
                    while readings.count < perPoint {
                        if readings.isEmpty {
                            try checkBatteryBeforeMoving(on: "point \(point.index)", completed: complete.count)
                            try await goTo(point, via: plan.waypoints.filter { $0.beforePoint == point.index })
                            await sleeper.sleep(seconds: profile.settleSeconds)
                        }
                        let interruptionsBefore = interruptions
                        let reading = try await measure(seconds: profile.readingSeconds)
                        let ordinal = nextOrdinal(.point, point.index)
                        // An overloaded reading came with (or just before) the loop's
                        // detector-overload stop: its counts include the overload. It is cut
                        // like a reading across a stop, twice at most; a third says the field
                        // really is beyond the probe's range, and it stands for the judgement.
                        let overloadCut = reading.overload && overloadCuts < 2
                        if overloadCut || (interruptions != interruptionsBefore && (!readings.isEmpty || !standsAt(point))) {
                            if overloadCut { overloadCuts += 1 }
                            // Taken across a stop and reset: the set so far is cut short (it
                            // stays in the record as it is, never topped up), and this reading
                            // is kept under the cut-set mark, never counted. Measure again
                            // from the approach.
                            try await record.appendPoint(point.index, reading, ordinal: ordinal, remeasure: false,
                                                         set: RecordedReading.setNumber(epoch: epoch, attempt: attempt + RecordedReading.cutAttempt))
                            readings = []
                            attempt += 1
                            update { $0.note = "point \(point.index): a reading set was cut short by a stop; kept and marked, the point is measured again" }
                            continue
                        }
                        try await record.appendPoint(point.index, reading, ordinal: ordinal, remeasure: false,
                                                     set: RecordedReading.setNumber(epoch: epoch, attempt: attempt))
                        readings.append(reading)
                    }
                    accepted.nextAttempt[point.index] = attempt + 1
                    points[point.index] = readings
                    complete.insert(point.index)
                }
                var taken = remeasured
                let readings = points[point.index] ?? []
                while needsRemeasure(readings) && taken < profile.remeasureCount {
                    if profile.movingSurvey && !standsAt(point) {
                        // A point the moving survey marked: measured standing now. (A standing
                        // survey re-measures where it stands, as before: after a reboot the
                        // lift reads unhomed and the robot must not set off for the point.)
                        try checkBatteryBeforeMoving(on: "measuring point \(point.index) standing", completed: complete.count)
                        try await goTo(point, via: [])
                        await sleeper.sleep(seconds: profile.settleSeconds)
                    }
                    let reading = try await measure(seconds: profile.readingSeconds * Double(perPoint) * profile.remeasureDwellFactor)
                    try await record.appendPoint(point.index, reading, ordinal: nextOrdinal(.remeasure, point.index), remeasure: true,
                                                 set: RecordedReading.setNumber(epoch: epoch, attempt: 0))
                    remeasures[point.index, default: []].append(reading)
                    taken += 1
                }
                done += 1
                let elapsed = sleeper.now().timeIntervalSince(started)
                secondsPerPoint = elapsed / Double(done)
                update {
                    $0.completedPoints = complete.count
                    $0.etaSeconds = Double($0.totalPoints - $0.completedPoints) * secondsPerPoint
                }
            }
            if let screener {
                // Rule 2: back to the points the whole container's model finds standing out
                // that were passed by while they were measured (the first few of a scan have
                // no model yet).
                for index in screener.deferred(background: background, points: points, remeasures: remeasures)
                where (remeasures[index] ?? []).count < profile.remeasureCount {
                    let point = plan.points[index]
                    try checkBatteryBeforeMoving(on: "measuring point \(index) again", completed: complete.count)
                    update { $0.note = "going back to point \(index) to measure it again (it stands out from the background modelled here)" }
                    try await goTo(point, via: [])
                    await sleeper.sleep(seconds: profile.settleSeconds)
                    let reading = try await measure(seconds: profile.readingSeconds * Double(perPoint) * profile.remeasureDwellFactor)
                    try await record.appendPoint(index, reading, ordinal: nextOrdinal(.remeasure, index), remeasure: true,
                                                 set: RecordedReading.setNumber(epoch: epoch, attempt: 0))
                    remeasures[index, default: []].append(reading)
                }
            }
            if profile.backgroundRepeatAtEnd && background.count < 2 * profile.backgroundReadings {
                // Background again, to see how far it drifted during the survey.
                update { $0.phase = .background }
                for stop in route(via: plan.returnWaypoints, to: plan.backgroundX, plan.backgroundY) {
                    try await move(x: stop.x, y: stop.y, height: nil)
                }
                try await move(x: plan.backgroundX, y: plan.backgroundY, height: profile.backgroundHeightMetres)
                while background.count < 2 * profile.backgroundReadings {
                    let reading = try await measure(seconds: profile.backgroundIntervalSeconds)
                    try await record.appendBackground(reading, ordinal: nextOrdinal(.background, -1), set: epoch)
                    background.append(reading)
                    update { $0.backgroundReadings = background.count }
                }
            }
            update { $0.phase = .computing }
            let verdict: Verdict
            do {
                verdict = try Judgement.evaluate(plan: plan, instrument: instrument, scanDate: scanDate, background: background,
                                                 points: points, remeasures: remeasures)
            } catch {
                update { $0.phase = .failed }
                throw Failure.refused(error)
            }
            update { $0.phase = .done; $0.etaSeconds = 0 }
            return verdict
        } catch let failure as Failure {
            switch failure {
            case .aborted: update { $0.phase = .aborted }
            case .interrupted: update { $0.phase = .failed; $0.waitingForReset = nil }
            default: update { $0.phase = .failed }
            }
            throw failure
        } catch {
            update { $0.phase = .failed }
            throw .record("\(error)")
        }
    }

    // MARK: Steps

    func checkPauseAndAbort() async throws(Failure) {
        while true {
            if Task.isCancelled { throw .interrupted }
            let (abort, paused) = lock.withLock { (abortRequested, pausedFlag) }
            if abort {
                _ = await loop.run(.stop, timeout: 2)
                throw .aborted
            }
            if !paused { return }
            await sleeper.sleep(seconds: 0.1 * sleeper.timeScale)
        }
    }

    /// Runs one command; on a safety stop waits for the officer's reset and retries,
    /// on other failures retries a few times.
    func perform(_ command: RobotCommand, timeout: Double) async throws(Failure) -> CommandFeedback {
        var attempts = 0
        while true {
            try await checkPauseAndAbort()
            let feedback = await loop.run(command, timeout: timeout)
            if let feedback, feedback.state == .done { return feedback }
            if Task.isCancelled { throw .interrupted }
            if feedback?.problem == .liftNotHomed, command != .homeLift {
                // The lift lost its homing (a firmware reboot): home it again, then carry on.
                _ = try await perform(.homeLift, timeout: 120)
                continue
            }
            if pauseIfThePathStaysBlocked(feedback) { continue }
            attempts += 1
            interruptions += 1
            if let cause = loop.snapshot().stopCause {
                try await waitOutStop(cause)
                attempts = 0
                continue
            }
            if attempts >= 5 {
                throw .step("\(command) failed \(attempts) times: \(feedback?.problem.map { "\($0)" } ?? "no answer")")
            }
            await sleeper.sleep(seconds: 0.5 * sleeper.timeScale)
        }
    }

    /// A move that waited out the hold limit for someone in the protective field (H9):
    /// pause the scan, resumable, and say why; the officer checks the yard and resumes.
    /// Returns whether it paused.
    func pauseIfThePathStaysBlocked(_ feedback: CommandFeedback?) -> Bool {
        guard case .heldByProtectiveField? = feedback?.problem else { return false }
        interruptions += 1
        pause(reason: "someone stayed in the robot's path: \(feedback?.problem.map { "\($0)" } ?? ""); press Resume when it is clear")
        return true
    }

    /// Waits, showing the cause, until an officer resets the safety stop.
    func waitOutStop(_ cause: StopCause) async throws(Failure) {
        update { $0.waitingForReset = cause.description }
        while loop.snapshot().stopCause != nil {
            try await checkPauseAndAbort()
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        update { $0.waitingForReset = nil }
    }

    private func ensureHomed() async throws(Failure) {
        if !loop.snapshot().liftHomed {
            _ = try await perform(.homeLift, timeout: 120)
        }
    }

    private func measure(seconds: Double) async throws(Failure) -> DoseReading {
        let feedback = try await perform(.measure(seconds: seconds), timeout: seconds / sleeper.timeScale + 30)
        guard let r = feedback.reading else { throw .step("measurement returned no reading") }
        return DoseReading(r, calibrationFactor: instrument.calibrationFactor, takenAt: sleeper.now())
    }
}

extension DoseReading {
    /// A reading from the control loop's measurement: the loop's dose rate is the calibrated
    /// (gross) one; raw is it over the calibration factor.
    public init(_ r: Reading, calibrationFactor: Double, takenAt: Date) {
        let raw = r.doseRateMicrosievertsPerHour / calibrationFactor
        self.init(counts: r.counts, seconds: r.seconds, countRatePerSecond: r.countRatePerSecond, rawDoseRate: raw,
                  grossDoseRate: raw * calibrationFactor, instrumentDoseRate: r.instrumentDoseRateMicrosievertsPerHour,
                  overload: r.overload, takenAt: takenAt)
    }
}
