import Foundation
import Inspection
import RobotSimulator
import RobotTesting
import Testing

/// Whole demo-profile scans in the yards of `hil/README.md`, "Radiation environment": the
/// real loop, executor and judgement in virtual time against the simulator's shadowing,
/// NORM, rain and a neighbour's source. Each scenario says what the verdict must be, and
/// for the shadowed cases what rule 1 (against the station alone) would have said.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct YardScanTests {
    // The rigs use a long idle threshold: nothing in these scans waits in wall time, and
    // with the default 0.2 s the robot's time ran on while the executor computed rule 2's
    // screen on a loaded machine, so a weak source's verdict depended on the CPU.
    func scan(_ scenario: String) async throws -> (verdict: Verdict, executor: ScanExecutor) {
        let rig = try await ScanTests.Rig(scenarioFile: "hil/scenarios/\(scenario)", idleWallSeconds: 5)
        let executor = try rig.executor()
        return (try await executor.run(scanDate: 20261207), executor)
    }

    /// The same readings judged by rule 1, as a scan recorded before rule 2 would be.
    func ruleOne(_ executor: ScanExecutor, _ verdict: Verdict, record: InMemoryScanRecord) async throws -> Verdict {
        var plan = executor.plan
        plan.profile.decision = nil
        let accepted = try await record.accepted(readingsPerPoint: plan.profile.readingsPerPoint)
        return try Judgement.evaluate(plan: plan, instrument: executor.instrument, scanDate: 20261207, background: accepted.background,
                                      points: accepted.points, remeasures: accepted.remeasures)
    }

    func summary(_ v: Verdict) -> String {
        "\(v.outcome.rawValue); flags \(v.flags); flagged " + v.points.filter { $0.outcome != .pass }
            .map { "\($0.pointIndex) \($0.outcome.rawValue) \($0.reason ?? "")" }.joined(separator: ", ")
    }

    @Test func aCleanContainerInAShadowedYardPasses() async throws {
        let (verdict, _) = try await scan("shadowed-yard-40ft.yaml")
        #expect(verdict.outcome == .pass, "\(summary(verdict))")
        let model = try #require(verdict.rule?.background)
        #expect(model.siteLevel < 0.95, "the walls read below the station: level \(model.siteLevel)")
    }

    @Test func aWeakSourceBehindAShadowedWallIsFoundWhereRuleOneMissesIt() async throws {
        let rig = try await ScanTests.Rig(scenarioFile: "hil/scenarios/shadowed-weak-40ft.yaml", idleWallSeconds: 5)
        let record = InMemoryScanRecord()
        let executor = try rig.executor(record: record)
        let verdict = try await executor.run(scanDate: 20261207)
        #expect(verdict.outcome == .anomalous, "\(summary(verdict))")
        let spot = try #require(SourceLocalisation.hotSpots(plan: executor.plan, verdict: verdict).first)
        #expect(spot.face == .left)
        #expect(abs(spot.alongMetres - 4.5) < 1.0, "\(spot)")
        let old = try await ruleOne(executor, verdict, record: record)
        #expect(old.outcome == .pass, "against the station the shadowed wall hides it: \(summary(old))")
    }

    @Test func potashAboveTheLimitExceedsThoughEveryFaceIsRaised() async throws {
        let (verdict, executor) = try await scan("norm-potash-40ft.yaml")
        #expect(verdict.outcome == .exceeds, "\(summary(verdict))")
        // The verdict is settled after 3 confirmations: nothing is re-measured after the third.
        let confirmed = verdict.points.filter { ($0.pooledNet ?? 0) > verdict.limit }.map(\.pointIndex).sorted()
        #expect(confirmed.count >= PlannedJudgement.Screener.settledAfterExceedances)
        let settledAt = confirmed[min(confirmed.count, PlannedJudgement.Screener.settledAfterExceedances) - 1]
        let later = verdict.points.filter { $0.pointIndex > settledAt && $0.remeasureNet != nil }.map(\.pointIndex)
        #expect(later.isEmpty, "re-measured after the verdict was settled at point \(settledAt): \(later) of \(executor.plan.points.count)")
    }

    @Test func rainStartingMidScanIsInconclusiveNeverAnomalous() async throws {
        let (verdict, _) = try await scan("rain-40ft.yaml")
        #expect(verdict.outcome == .inconclusive, "\(summary(verdict))")
        #expect(verdict.flags.contains { $0.contains("measured again") })
    }

    /// The standard profile: the demo's 1.7 m columns cannot tell a source 2 m away from one
    /// just inside the wall by the breadth of its peak. Whether the fit puts it *outside* the
    /// walls is a matter of chance on this grid (about one scan in four, `VerdictBench`), so
    /// one seeded scan can only show what always holds: the alarm, on the right side. (This
    /// test once asserted "outside" on a lucky seed; protocol 1.1's physics changed the draw.)
    @Test func aSourceNextDoorIsPlacedOutsideTheContainer() async throws {
        let rig = try await ScanTests.Rig(scenarioFile: "hil/scenarios/neighbour-source-40ft.yaml", idleWallSeconds: 5)
        let executor = try rig.executor(profileFile: "profiles/snt0570-2007.yaml")
        let verdict = try await executor.run(scanDate: 20261207)
        #expect(verdict.outcome >= .anomalous, "\(summary(verdict))")
        let spots = SourceLocalisation.hotSpots(plan: executor.plan, verdict: verdict)
        let spot = try #require(spots.first)
        // Rule 2, revision 2: the excess over the container's model, with a level below zero
        // allowed, keeps the neighbour's broad excess whole; the fit lands beyond the right
        // wall (across is measured from the left wall; the container is 2.438 m wide and the
        // source sits 4.49 m across, 6.0 m along).
        #expect(spot.outsideContainer == true && spot.acrossMetres > 2.438, "outside, beyond the right wall: \(spots)")
        #expect(abs(spot.alongMetres - 6.0) < 1.0, "along: \(spot.alongMetres) m")
    }
}
