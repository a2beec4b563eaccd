import Foundation
import RobotControl
import RobotSimulator
import RobotTesting
import Testing

/// People and vehicles (protocol 1.1 H9, `docs/safety.md`): the firmware stops the chassis
/// for the protective field, the loop slows in the warning field, holds a stopped move and
/// sends its remainder once the field has stayed clear, gives up at the hold limit, and a
/// faulted scanner keeps the chassis still. Each in virtual time against the simulator's
/// truth (where the person is, whether they were touched).
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct PeopleTests {
    func robot(_ configure: (inout Scenario) -> Void = { _ in }, policy: PeoplePolicy = PeoplePolicy()) async throws -> VirtualRobot {
        var scenario = Scenario(name: "people")
        scenario.startLiftMetres = 0.4
        configure(&scenario)
        var configuration = ControlConfiguration()
        configuration.people = policy
        let robot = try await VirtualRobot(scenario: scenario, configuration: configuration)
        robot.run(seconds: 1)
        #expect(robot.loop.protocolFeatures.fieldScanner)
        return robot
    }

    @Test func aPersonStandingInThePathStopsTheWalkWhichGoesOnWhenTheyLeave() async throws {
        // Someone walks into the path 4 m ahead, stops there for a while (walks slowly
        // across), and goes: the walk stops short of them, waits, and arrives.
        let robot = try await robot { s in
            s.people = [WalkingPerson(fromX: 3.2, fromY: -1.5, toX: 3.2, toY: 1.5, speedMetresPerSecond: 0.15, startSeconds: 3)]
        }
        let id = robot.loop.submit(.walkTo(x: 8, y: 0, speedMetresPerSecond: 0.5), expiresIn: 5)
        var held = false, closest = Double.infinity
        robot.run(until: {
            if robot.loop.snapshot().heldByProtectiveField { held = true }
            let truth = robot.model.truth()
            if let p = robot.model.people.first?.position(atSeconds: robot.seconds) { closest = min(closest, hypot(p.x - truth.x, p.y - truth.y)) }
            return robot.loop.feedback(id)?.state.isFinal == true
        }, within: 120)
        let feedback = robot.loop.feedback(id)
        #expect(feedback?.state == .done, "\(String(describing: feedback?.problem))")
        #expect(held, "the loop held the walk while someone stood in the protective field")
        #expect(robot.model.contacts.isEmpty, "contacts: \(robot.model.contacts)")
        #expect(robot.model.protectiveStops.count >= 1)
        #expect(robot.loop.snapshot().protectiveStops >= 1)
        // The outline is 0.45 m ahead of the reference point and the person 0.2 m round.
        #expect(closest > 0.45 + 0.2, "closest approach \(closest) m")
        let kinds = robot.loop.fieldEvents().map(\.kind)
        #expect(kinds.contains(.protectiveStop) && kinds.contains(.resumed), "\(kinds)")
        let truth = robot.model.truth()
        #expect(abs(truth.x - 8) < 0.03 && abs(truth.y) < 0.03, "arrived at (\(truth.x), \(truth.y))")
    }

    @Test func theWalkSlowsInTheWarningFieldAndSpeedsUpAfterIt() async throws {
        // Someone crosses well ahead, through the warning field only.
        let robot = try await robot { s in
            s.people = [WalkingPerson(fromX: 5.0, fromY: -4, toX: 5.0, toY: 4, speedMetresPerSecond: 1.6, startSeconds: 5.5)]
        }
        let id = robot.loop.submit(.walkTo(x: 10, y: 0, speedMetresPerSecond: 0.5), expiresIn: 5)
        var slowest = Double.infinity
        robot.run(until: {
            let s = robot.loop.snapshot()
            if robot.seconds > 8 && robot.seconds < 9.5 { slowest = min(slowest, s.speedMetresPerSecond) }
            return robot.loop.feedback(id)?.state.isFinal == true
        }, within: 120)
        #expect(robot.loop.feedback(id)?.state == .done)
        let kinds = robot.loop.fieldEvents().map(\.kind)
        #expect(kinds.contains(.slowed) && kinds.contains(.spedUp), "\(kinds)")
        #expect(slowest <= 0.21, "slowest speed while someone was in the warning field: \(slowest) m/s")
        #expect(robot.model.contacts.isEmpty)
        let truth = robot.model.truth()
        #expect(abs(truth.x - 10) < 0.03, "arrived at \(truth.x)")
    }

    @Test func aWalkSlowedAllTheWayIsGivenTheTimeItNeedsNotTimedOut() async throws {
        // Someone walks ahead beside the path at the warning speed: the robot stays in its
        // warning field and slowed for the whole 10 m (50 s, against 33 s allowed at 0.5 m/s).
        let robot = try await robot { s in
            s.people = [WalkingPerson(fromX: 2.0, fromY: 1.7, toX: 40, toY: 1.7, speedMetresPerSecond: 0.2, startSeconds: 0)]
        }
        let feedback = robot.perform(.walkTo(x: 10, y: 0, speedMetresPerSecond: 0.5), within: 120)
        #expect(feedback?.state == .done, "\(String(describing: feedback?.problem))")
        #expect(robot.loop.fieldEvents().map(\.kind).contains(.slowed))
        #expect(robot.model.contacts.isEmpty)
        #expect(abs(robot.model.truth().x - 10) < 0.03)
    }

    @Test func aMoveGivesUpWhenThePathStaysBlocked() async throws {
        var policy = PeoplePolicy()
        policy.holdLimitSeconds = 10
        // Someone stands in the path (walking 0.1 m/s along it, away: never clears in time).
        let robot = try await robot({ s in
            s.people = [WalkingPerson(fromX: 2.5, fromY: 0, toX: 100, toY: 0, speedMetresPerSecond: 0.1, startSeconds: 0)]
        }, policy: policy)
        let feedback = robot.perform(.walkTo(x: 20, y: 0, speedMetresPerSecond: 0.5), within: 60)
        #expect(feedback?.state == .failed)
        if case .heldByProtectiveField = feedback?.problem {} else { Issue.record("problem: \(String(describing: feedback?.problem))") }
        #expect(robot.loop.fieldEvents().map(\.kind).contains(.gaveUp))
        #expect(robot.model.contacts.isEmpty)
        #expect(!robot.loop.snapshot().heldByProtectiveField)
    }

    @Test func aFaultedScannerKeepsTheChassisStillAndIsNamed() async throws {
        let robot = try await robot()
        robot.model.inject(.fieldScannerFault(true))
        robot.run(seconds: 0.5)
        #expect(robot.loop.snapshot().fieldScanner == .fault)
        let before = robot.model.truth()
        let id = robot.loop.submit(.walk(metres: 2, speedMetresPerSecond: 0.5), expiresIn: 5)
        robot.run(seconds: 5)
        let after = robot.model.truth()
        #expect(hypot(after.x - before.x, after.y - before.y) < 0.001, "the chassis moved with a faulted scanner")
        #expect(robot.loop.snapshot().heldByProtectiveField)
        robot.model.inject(.fieldScannerFault(false))
        robot.run(until: { robot.loop.feedback(id)?.state.isFinal == true }, within: 30)
        #expect(robot.loop.feedback(id)?.state == .done)
        let kinds = robot.loop.fieldEvents().map(\.kind)
        #expect(kinds.contains(.scannerFault) && kinds.contains(.scannerRecovered), "\(kinds)")
    }

    @Test func aChassisWithoutAScannerIsListedAsMissingIt() async throws {
        var scenario = Scenario(name: "no scanner")
        scenario.settings.fieldScanner = nil
        let robot = try await VirtualRobot(scenario: scenario)
        robot.run(seconds: 0.5)
        #expect(!robot.loop.protocolFeatures.fieldScanner)
        #expect(robot.loop.protocolFeatures.missing.contains { $0.contains("no protective-field scanner") })
        #expect(robot.loop.snapshot().fieldScanner == .absent)
    }

    @Test func theTopViewsFieldsFollowTheSpeedAndTheOutline() {
        let policy = PeoplePolicy()
        let forward = policy.fields(speedMetresPerSecond: 0.5)
        #expect(abs(forward.protective.front - (0.45 + 1.235)) < 1e-9 && forward.protective.rear == 0.45)
        #expect(abs(forward.protective.side - (0.30 + 1.06)) < 1e-9)
        #expect(abs(forward.warning.front - forward.protective.front - 1) < 1e-9 && forward.warning.rear == 0.45, "not behind a robot driving forwards")
        let backward = policy.fields(speedMetresPerSecond: -0.2)
        #expect(backward.protective.front == 0.45 && abs(backward.protective.rear - (0.45 + 0.62)) < 1e-9)
        let standing = policy.fields(speedMetresPerSecond: 0)
        #expect(abs(standing.protective.front - 0.71) < 1e-9 && abs(standing.protective.rear - 0.71) < 1e-9 && abs(standing.protective.side - 0.56) < 1e-9)
        #expect(policy.fields(speedMetresPerSecond: 0, turnDegreesPerSecond: 45).protective.side > standing.protective.side, "a turn widens it")
    }
}
