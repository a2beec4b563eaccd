import Foundation
import Inspection
import RobotControl
import RobotSimulator
import RobotTesting
import Testing

/// A scan and the people in the yard (protocol 1.1 H9, `docs/safety.md`): someone who
/// stays in the robot's path longer than the hold limit pauses the scan, resumable, with
/// the reason; once the path is clear and the officer resumes, the scan finishes with every
/// point measured and nobody touched. Virtual time, judged on the simulator's truth.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct PeopleScanTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The clean 20 ft container with these people in the yard, free-running in virtual time,
    /// and an executor for `profileFile`.
    static func scan(people: [WalkingPerson], profileFile: String, idleWallSeconds: Double,
                     configure: (inout ControlConfiguration) -> Void = { _ in }) async throws -> (robot: VirtualRobot, executor: ScanExecutor) {
        var scenario = try Scenario.load(path: root.appendingPathComponent("hil/scenarios/clean-20ft.yaml").path)
        scenario.startLiftMetres = 0.4
        scenario.people = people
        var configuration = ControlConfiguration()
        configuration.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 6.108, maxY: 0.05)]
        configure(&configuration)
        let robot = try await VirtualRobot(scenario: scenario, configuration: configuration)
        robot.startRunning(idleWallSeconds: idleWallSeconds)
        let profile = try ProcedureProfile.load(path: root.appendingPathComponent(profileFile).path)
        let placement = ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .twentyFoot, xMetres: 0, yMetres: 0)
        return (robot, try robot.executor(plan: ScanPlan(container: placement, profile: profile), record: InMemoryScanRecord()))
    }

    @Test func someoneBlockingThePathPausesTheScanWhichFinishesWhenTheyHaveGone() async throws {
        // Someone lingers beside the left face, half-way along (walking 0.5 m at 2 cm/s, again
        // and again): wherever the robot comes by there, they are in its field.
        let (robot, executor) = try await Self.scan(
            people: [WalkingPerson(fromX: 3, fromY: 0.45, toX: 3, toY: 0.95, speedMetresPerSecond: 0.02, startSeconds: 0, everySeconds: 25.5)],
            profileFile: "profiles/demo.yaml", idleWallSeconds: 0.2) { $0.people.holdLimitSeconds = 10 }
        defer { robot.stopFreeRunning() }
        let scan = Task { try await executor.run(scanDate: 20261207) }

        let deadline = Date().addingTimeInterval(120)
        while !executor.progress.paused && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(executor.progress.paused, "the scan paused for the blocked path")
        let reason = executor.progress.pausedReason ?? ""
        #expect(reason.contains("protective field") && reason.contains("Resume"), "\(reason)")
        let measuredWhenPaused = executor.progress.completedPoints
        #expect(robot.loop.fieldEvents().map(\.kind).contains(.gaveUp))

        robot.model.removeAllPeople()
        executor.resume()
        let verdict = try await scan.value
        #expect(verdict.outcome == .pass, "\(verdict.outcome)")
        #expect(executor.progress.completedPoints == executor.plan.points.count)
        #expect(executor.progress.completedPoints > measuredWhenPaused)
        #expect(robot.model.contacts.isEmpty, "contacts: \(robot.model.contacts)")
    }

    @Test func theMovingSurveyObeysTheFieldsAndStillJudgesEveryPoint() async throws {
        // Yard traffic: someone walks up to the left face every 20 s, another crosses in
        // front of the doors every 30 s.
        let (robot, executor) = try await Self.scan(
            people: [WalkingPerson(fromX: 3, fromY: 4, toX: 3, toY: 0.5, speedMetresPerSecond: 1.2, startSeconds: 0, everySeconds: 20),
                     WalkingPerson(fromX: -2.5, fromY: 4, toX: -2.5, toY: -6, speedMetresPerSecond: 1.0, startSeconds: 5, everySeconds: 30)],
            profileFile: "profiles/fast.yaml", idleWallSeconds: 5)
        defer { robot.stopFreeRunning() }
        let verdict = try await executor.run(scanDate: 20261207)
        #expect(verdict.outcome == .pass, "\(verdict.flags)")
        #expect(verdict.points.count == executor.plan.points.count, "every point judged")
        #expect(robot.model.contacts.isEmpty, "contacts: \(robot.model.contacts)")
        let snapshot = robot.loop.snapshot()
        #expect(snapshot.protectiveStops + snapshot.fieldSlowdowns > 0, "the people met the robot")
        print("moving survey with yard traffic: \(snapshot.protectiveStops) protective stops, \(snapshot.fieldSlowdowns) slow-downs, "
              + "\(robot.model.protectiveStops.count) stops in the firmware's truth")
    }
}
