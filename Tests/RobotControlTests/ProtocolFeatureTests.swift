import FirmwareProtocol
import Foundation
import RobotControl
import RobotSimulator
import RobotTesting
import Testing

/// Protocol 1.1 at start-up (`firmware-protocol/README.md` §12): the controller accepts
/// 1.0 firmware, lists the 1.1 features it cannot use, and refuses what needs them; with
/// 1.1 firmware it gives the chassis its start pose and releases the power-up interlock.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ProtocolFeatureTests {
    static func scenario(minor: UInt16 = ProtocolVersion.current.minor, poseKnown: Bool = true) -> Scenario {
        var scenario = LoopHarness.scenario()
        scenario.settings.protocolMinor = minor
        scenario.settings.poseKnownAtPowerUp = poseKnown
        return scenario
    }

    @Test func aControllerMeetingProtocol10ListsWhatItCannotUseAndStillWorks() async throws {
        let robot = try await VirtualRobot(scenario: Self.scenario(minor: 0))
        let notes = robot.loop.startupNotes
        #expect(notes.contains { $0.contains("chassis speaks protocol 1.0: its pose cannot be set") }, "\(notes)")
        #expect(notes.contains { $0.contains("safety speaks protocol 1.0: no power-up interlock") }, "\(notes)")
        #expect(robot.loop.protocolFeatures.boot.isEmpty)
        #expect(robot.perform(.walk(metres: 0.2, speedMetresPerSecond: nil), within: 10)?.state == .done)
    }

    @Test func aStartPoseNeedsAChassisWithThePoseBlock() async throws {
        var configuration = ControlConfiguration()
        configuration.startPose = StartPose(xMetres: 40, yMetres: -3, headingDegrees: 90)
        do {
            _ = try await VirtualRobot(scenario: Self.scenario(minor: 0), configuration: configuration)
            Issue.record("a 1.0 chassis with a start pose configured was accepted")
        } catch let error as ControlLoop.StartError {
            #expect(error.description.contains("has no pose block"), "\(error)")
        }
    }

    @Test func aChassisWithoutAPoseIsGivenTheStartPoseAndOneWithAPoseKeepsIt() async throws {
        var configuration = ControlConfiguration()
        configuration.startPose = StartPose(xMetres: 40, yMetres: -3, headingDegrees: 90)
        let given = try await VirtualRobot(scenario: Self.scenario(poseKnown: false), configuration: configuration)
        given.run(seconds: 0.2)
        let s = given.loop.snapshot()
        #expect(abs(s.xMetres - 40) < 0.002 && abs(s.yMetres + 3) < 0.002 && abs(s.headingDegrees - 90) < 0.05, "\(s.xMetres), \(s.yMetres), \(s.headingDegrees)")
        #expect(given.loop.startupNotes.contains { $0.hasPrefix("pose given to the chassis") })
        // Walking 1 m at heading 90° goes along +y in the given frame.
        #expect(given.perform(.walk(metres: 1, speedMetresPerSecond: nil), within: 10)?.state == .done)
        #expect(abs(given.loop.snapshot().yMetres + 2) < 0.01)

        let kept = try await VirtualRobot(scenario: Self.scenario(), configuration: configuration)
        kept.run(seconds: 0.2)
        #expect(abs(kept.loop.snapshot().xMetres - kept.truth.x) < 0.01, "a chassis that knows its pose keeps it")
        #expect(kept.loop.startupNotes.contains { $0.contains("startPose not written") })
    }
}
