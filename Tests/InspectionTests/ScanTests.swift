import FirmwareProtocol
import Foundation
import Inspection
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// Whole scans with the demo profile in virtual time: the real loop, the executor and the
/// simulator's firmware model, stepped together (`RobotTesting.VirtualRobot`), through
/// background and every point, then the verdict. A scan takes a second or two of wall
/// time; the HIL tier runs the same scans over a pty in real time (`ScanHILTests`).
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ScanTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    final class Rig: @unchecked Sendable {
        let robot: VirtualRobot
        var loop: ControlLoop { robot.loop }
        var model: FirmwareModel { robot.model }

        init(scenarioFile: String, start: (x: Double, y: Double, headingDegrees: Double)? = nil,
             idleWallSeconds: Double = 0.2) async throws {
            var scenario = try Scenario.load(path: ScanTests.root.appendingPathComponent(scenarioFile).path)
            scenario.startLiftMetres = 0.4
            if let start {
                scenario.startX = start.x
                scenario.startY = start.y
                scenario.startHeadingDegrees = start.headingDegrees
            }
            var configuration = ControlConfiguration()
            configuration.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 12.242, maxY: 0.05)]
            robot = try await VirtualRobot(scenario: scenario, configuration: configuration)
            robot.startRunning(idleWallSeconds: idleWallSeconds)
        }

        deinit {
            robot.stopFreeRunning()
        }

        func executor(record: ScanRecord = InMemoryScanRecord(), readingsPerPoint: Int? = nil,
                      profileFile: String = "profiles/demo.yaml") throws -> ScanExecutor {
            var profile = try ProcedureProfile.load(path: ScanTests.root.appendingPathComponent(profileFile).path)
            if let readingsPerPoint { profile.readingsPerPoint = readingsPerPoint }
            let placement = ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 0, yMetres: 0)
            return try robot.executor(plan: ScanPlan(container: placement, profile: profile), record: record)
        }
    }

    @Test func aContainerWithACs137SourceExceedsOnTheLeftFace() async throws {
        let rig = try await Rig(scenarioFile: "hil/scenarios/cs137-40ft.yaml")
        let executor = try rig.executor()
        let verdict = try await executor.run(scanDate: 20261129)
        #expect(verdict.outcome == .exceeds)
        let hot = try #require(verdict.maxNetPointIndex)
        let point = executor.plan.points[hot]
        #expect(point.face == .left)
        // The source is 7.5 m from the doors; the hottest column is the nearest one.
        #expect(abs(point.positionAlongFaceMetres - 7.5) < 1.0, "hot spot at \(point.positionAlongFaceMetres) m")
        #expect(abs(verdict.backgroundMean - 0.10) < 0.05)
        // Where to open: the estimate is on the left face, within 1 m of the true source.
        let estimate = try #require(SourceLocalisation.estimate(plan: executor.plan, verdict: verdict))
        #expect(estimate.face == .left)
        let error = ((estimate.alongMetres - 7.5) * (estimate.alongMetres - 7.5) + (estimate.acrossMetres - 0.4) * (estimate.acrossMetres - 0.4)
            + (estimate.heightMetres - 1.2) * (estimate.heightMetres - 1.2)).squareRoot()
        #expect(error < 1.0, "estimate \(estimate)")
        #expect(executor.progress.phase == .done)
        #expect(executor.progress.completedPoints == executor.plan.points.count)
    }

    @Test func aCleanContainerPasses() async throws {
        let rig = try await Rig(scenarioFile: "hil/scenarios/clean-20ft.yaml")
        // The plan is for the 40 ft footprint at the origin; the 20 ft box sits inside it.
        let verdict = try await rig.executor().run(scanDate: 20261129)
        let flagged = verdict.points.filter { $0.outcome != .pass }
            .map { "point \($0.pointIndex): gross \($0.grossMean) net \($0.net) ± \($0.netUncertainty)" }
        #expect(verdict.outcome == .pass, "background \(verdict.backgroundMean) ± \(verdict.backgroundDeviation), threshold \(verdict.decisionThreshold); \(flagged)")
    }

    @Test func aWeakSourceIsAnomalousNotExceeds() async throws {
        let rig = try await Rig(scenarioFile: "hil/scenarios/weak-40ft.yaml")
        let verdict = try await rig.executor().run(scanDate: 20261129)
        #expect(verdict.outcome == .anomalous, "max net \(verdict.maxNet)")
        #expect(verdict.maxNet < verdict.limit)
    }

    @Test func aFaultMidScanIsSurvivedWithoutLosingAReading() async throws {
        let rig = try await Rig(scenarioFile: "hil/scenarios/clean-20ft.yaml")
        let record = InMemoryScanRecord()
        let executor = try rig.executor(record: record)
        try await ScanTests.anEstopMidScanIsSurvivedWithoutLosingAReading(loop: rig.loop, executor: executor, record: record)
    }

    /// A scan resumed long after its background was measured says so, measures the
    /// background again and surveys again; the earlier readings stay, superseded.
    @Test func aResumedScanWithAnOldBackgroundMeasuresItAgain() async throws {
        // Nothing here waits in wall time: a long idle threshold keeps the robot's time
        // from running on while the executor computes on a loaded machine, so the readings
        // (and whether a point is measured again, which would replace the note) are the
        // seed's.
        let rig = try await Rig(scenarioFile: "hil/scenarios/clean-20ft.yaml", idleWallSeconds: 5)
        let record = InMemoryScanRecord()
        let executor = try rig.executor(record: record)
        let profile = executor.plan.profile
        // Background and the first two points, three hours ago.
        let old = rig.robot.clock.date.addingTimeInterval(-3 * 3600)
        let reading = DoseReading(counts: 32, seconds: 1, countRatePerSecond: 32, rawDoseRate: 0.1, grossDoseRate: 0.1,
                                  instrumentDoseRate: 0.1, overload: false, takenAt: old)
        for i in 0..<profile.backgroundReadings { try await record.appendBackground(reading, ordinal: i) }
        for index in 0..<2 { try await record.appendPoint(index, reading, ordinal: 0, remeasure: false) }
        let verdict = try await executor.run(scanDate: 20261129)
        #expect(verdict.outcome == .pass)
        #expect(executor.progress.note?.contains("background is") == true, "\(String(describing: executor.progress.note))")
        let accepted = AcceptedReadings(record.recordedReadings(), readingsPerPoint: profile.readingsPerPoint)
        #expect(accepted.epoch == 1)
        #expect(accepted.background.allSatisfy { $0.takenAt > old })
        #expect(accepted.points.count == executor.plan.points.count, "every point surveyed again")
        #expect(accepted.supersededReadings == profile.backgroundReadings + 2)
    }

    /// A stop in the middle of a point's reading set: the set so far is kept, the reading
    /// taken across the stop is kept under the cut mark, and the point is measured again
    /// with a whole new set; only that one counts.
    @Test func aReadingSetCutShortByAStopIsKeptMarkedAndTakenAgain() async throws {
        let rig = try await Rig(scenarioFile: "hil/scenarios/clean-20ft.yaml")
        let record = InMemoryScanRecord()
        let executor = try rig.executor(record: record, readingsPerPoint: 3)
        let officer = Task {
            // Once a point has one reading of its set, overload the detector (a stop during
            // the next reading), then clear it and reset like an officer.
            while !record.recordedReadings().contains(where: { $0.kind == .point && $0.pointIndex == 2 }) {
                try await Task.sleep(nanoseconds: 5_000_000)
            }
            rig.model.inject(.detectorOverload(true))
            while executor.progress.waitingForReset == nil { try await Task.sleep(nanoseconds: 10_000_000) }
            rig.model.inject(.detectorOverload(false))
            try await Task.sleep(nanoseconds: 200_000_000)
            _ = await rig.loop.run(.resetFault, timeout: 5)
        }
        let verdict = try await executor.run(scanDate: 20261129)
        try await officer.value
        let recorded = record.recordedReadings()
        #expect(verdict.outcome == .pass, "\(recorded.filter { $0.reading.grossDoseRate > 0.3 || $0.reading.overload }.map { ($0.kind, $0.pointIndex, $0.set, $0.reading.grossDoseRate, $0.reading.overload) })")
        let accepted = AcceptedReadings(recorded, readingsPerPoint: 3)
        #expect(accepted.points.count == executor.plan.points.count)
        #expect(accepted.points.values.allSatisfy { $0.count == 3 }, "one whole set per point")
        let atPoint2 = recorded.filter { $0.kind == .point && $0.pointIndex == 2 }
        let sets = Set(atPoint2.map(\.set))
        #expect(sets.count >= 2, "the cut set and the new one: \(atPoint2.map { ($0.ordinal, $0.set) })")
        #expect(atPoint2.contains { $0.set % 1000 >= RecordedReading.cutAttempt }, "the reading across the stop is marked")
        #expect(accepted.supersededReadings >= 2, "kept, not counted")
        #expect(Set(atPoint2.map(\.ordinal)).count == atPoint2.count, "no ordinal twice")
    }

    /// Found by the crash campaign: a controller killed just after the robot walked round
    /// the front corners resumed by walking back to the first corner, straight across the
    /// container; the loop refused it (keep-out) five times and the scan could not go on.
    @Test func aScanResumedPastACornerDoesNotWalkBackAcrossTheContainer() async throws {
        // Points 0–13 (the left face) are recorded; the robot already stands at point 14,
        // the first on the right face, past both front corners.
        let probe = try await Rig(scenarioFile: "hil/scenarios/weak-40ft.yaml")
        let plan = try probe.executor().plan
        let first = try #require(plan.points.first { $0.face == .right })
        let rig = try await Rig(scenarioFile: "hil/scenarios/weak-40ft.yaml", start: (first.xMetres, first.yMetres, 180))
        let record = InMemoryScanRecord()
        let reading = { (rate: Double) in
            DoseReading(counts: UInt32(rate * 320), seconds: 1, countRatePerSecond: rate * 320, rawDoseRate: rate, grossDoseRate: rate,
                        instrumentDoseRate: rate, overload: false, takenAt: Date())
        }
        for i in 0..<plan.profile.backgroundReadings { try await record.appendBackground(reading(0.1), ordinal: i) }
        for point in plan.points where point.index < first.index {
            for r in 0..<plan.profile.readingsPerPoint { try await record.appendPoint(point.index, reading(0.1), ordinal: r, remeasure: false) }
        }
        let executor = try rig.executor(record: record)
        let verdict = try await executor.run(scanDate: 20261129)
        #expect(record.pointReadings().count == plan.points.count, "every point measured")
        #expect(verdict.points.count == plan.points.count)
    }

    @Test func theOfficerCanPauseResumeAndAbort() async throws {
        let rig = try await Rig(scenarioFile: "hil/scenarios/clean-20ft.yaml")
        let executor = try rig.executor()
        let scan = Task { () -> String in
            do {
                _ = try await executor.run(scanDate: 20261129)
                return "finished"
            } catch {
                return "\(error)"
            }
        }
        while executor.progress.completedPoints < 2 { try await Task.sleep(nanoseconds: 10_000_000) }
        executor.pause()
        try await Task.sleep(nanoseconds: 600_000_000)  // let the step under way finish
        let held = executor.progress.completedPoints
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(executor.progress.paused)
        #expect(executor.progress.completedPoints == held, "no progress while paused")
        executor.resume()
        let target = held + 2
        while executor.progress.completedPoints < target { try await Task.sleep(nanoseconds: 10_000_000) }
        executor.abort()
        #expect(await scan.value == "the scan was aborted")
        #expect(executor.progress.phase == .aborted)
        #expect(executor.progress.completedPoints < executor.plan.points.count)
        #expect(executor.progress.etaSeconds >= 0)
    }

    /// The standard procedure (SN/T 0570-2007 profile: 300 points round a 40 ft container,
    /// two 10-reading backgrounds) in virtual time, twice on the same seed: the same
    /// verdict and every reading the same, bit for bit. The wall time goes in the log.
    @Test func aStandard300PointScanIsTheSameBitForBitForTheSameSeed() async throws {
        func scan() async throws -> (readings: [UInt32], verdict: Verdict, virtualSeconds: Double, wallSeconds: Double) {
            // A long idle allowance: time must not move while the executor is between steps,
            // even on a loaded machine, or the two runs could differ.
            let rig = try await Rig(scenarioFile: "hil/scenarios/cs137-40ft.yaml", idleWallSeconds: 5)
            let record = InMemoryScanRecord()
            let executor = try rig.executor(record: record, profileFile: "profiles/snt0570-2007.yaml")
            let started = Date()
            let verdict = try await executor.run(scanDate: 20261207)
            rig.robot.stopFreeRunning()
            return (record.recordedReadings().map(\.reading.counts), verdict, rig.robot.seconds, Date().timeIntervalSince(started))
        }
        let first = try await scan()
        let second = try await scan()
        print("standard scan in virtual time: \(first.readings.count) readings, \(Int(first.virtualSeconds)) s virtual in \(String(format: "%.1f", first.wallSeconds)) s wall")
        #expect(first.verdict.points.count == 300)
        #expect(first.verdict.outcome == .exceeds)
        #expect(first.readings == second.readings, "the same seed must give the same counts")
        #expect(first.verdict.maxNet == second.verdict.maxNet)
        #expect(first.virtualSeconds == second.virtualSeconds)
    }

    /// An officer presses the e-stop once the survey is under way and releases it; the scan
    /// carries on and ends with one reading per point, none lost and none twice. Shared by
    /// the virtual-time and the real-time (HIL) suites.
    static func anEstopMidScanIsSurvivedWithoutLosingAReading(loop: ControlLoop, executor: ScanExecutor,
                                                              record: InMemoryScanRecord) async throws {
        let officer = Task {
            while executor.progress.completedPoints < 3 { try await Task.sleep(nanoseconds: 20_000_000) }
            loop.submit(.estop)
            while executor.progress.waitingForReset == nil { try await Task.sleep(nanoseconds: 20_000_000) }
            let readingsAtStop = record.pointReadings().values.reduce(0) { $0 + $1.count }
            _ = await loop.run(.releaseEstop, timeout: 5)
            return readingsAtStop
        }
        let verdict = try await executor.run(scanDate: 20261129)
        let readingsAtStop = try await officer.value
        #expect(verdict.outcome == .pass)
        let accepted = AcceptedReadings(record.recordedReadings(), readingsPerPoint: 1)
        #expect(accepted.points.count == executor.plan.points.count)
        #expect(accepted.points.values.allSatisfy { $0.count == 1 }, "one reading per point, none duplicated")
        let remeasures = accepted.remeasures.values.reduce(0) { $0 + $1.count }
        #expect(accepted.remeasures.values.allSatisfy { $0.count <= executor.plan.profile.remeasureCount })
        #expect(record.recordedReadings().count == accepted.background.count + executor.plan.points.count + remeasures + accepted.supersededReadings)
        #expect(readingsAtStop >= 3)
    }
}
