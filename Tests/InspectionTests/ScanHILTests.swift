import FirmwareProtocol
import Foundation
import Inspection
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// Whole scans over a real link in real time (HIL tier): the real loop drives the
/// simulator over a pty, ten times faster than real time, through background and every
/// point, then the verdict. The scan behaviours run in virtual time (`ScanTests`), and a
/// whole Cs-137 scan over a pty runs through the API (`ScanAndTelemetryTests`); this one
/// shows an e-stop over the wire mid-scan with no reading lost or duplicated.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct ScanHILTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let timeScale = 10.0

    final class Rig: @unchecked Sendable {
        let robot: PtyRobot
        var loop: ControlLoop { robot.loop }
        var simulator: Simulator { robot.simulator }

        init(scenarioFile: String) async throws {
            var scenario = try Scenario.load(path: ScanHILTests.root.appendingPathComponent(scenarioFile).path)
            scenario.timeScale = ScanHILTests.timeScale
            scenario.startLiftMetres = 0.4
            var configuration = ControlConfiguration()
            configuration.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 12.242, maxY: 0.05)]
            // The firmware's watchdog runs in its (ten times faster) time: PtyRobot stretches it.
            robot = try await PtyRobot(scenario: scenario, configuration: configuration, responseTimeoutMilliseconds: 50)
        }

        func executor(record: ScanRecord = InMemoryScanRecord()) throws -> ScanExecutor {
            let profile = try ProcedureProfile.load(path: ScanHILTests.root.appendingPathComponent("profiles/demo.yaml").path)
            let placement = ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 0, yMetres: 0)
            return try robot.executor(plan: ScanPlan(container: placement, profile: profile), record: record)
        }
    }

    @Test func aFaultMidScanIsSurvivedWithoutLosingAReading() async throws {
        let rig = try await Rig(scenarioFile: "hil/scenarios/clean-20ft.yaml")
        let record = InMemoryScanRecord()
        let executor = try rig.executor(record: record)
        try await ScanTests.anEstopMidScanIsSurvivedWithoutLosingAReading(loop: rig.loop, executor: executor, record: record)
    }
}
