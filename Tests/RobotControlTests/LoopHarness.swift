import FirmwareProtocol
import Foundation
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting

/// The real control loop, on its own thread, driving the simulator over a pty in real time
/// (`RobotTesting.PtyRobot` with this suite's yard and a short bus timeout).
final class LoopHarness: @unchecked Sendable {
    let robot: PtyRobot
    var simulator: Simulator { robot.simulator }
    var bus: ModbusBus { robot.bus }
    var loop: ControlLoop { robot.loop }

    static func scenario() -> Scenario {
        var scenario = Scenario(name: "loop test yard")
        scenario.startX = -12
        scenario.startY = 1
        // Start the mast low so homing takes half a second, not seven.
        scenario.startLiftMetres = 0.36
        scenario.field.containers = [PlacedContainer(number: "CSQU3054383", type: .twentyFoot, x: 0, y: 0)]
        return scenario
    }

    init(configuration: ControlConfiguration = ControlConfiguration(), scenario: Scenario = LoopHarness.scenario(),
         responseTimeoutMilliseconds: Int = 30) async throws {
        robot = try await PtyRobot(scenario: scenario, configuration: configuration,
                                   responseTimeoutMilliseconds: responseTimeoutMilliseconds, maxRetries: 1,
                                   reconnectIntervalMilliseconds: 50)
    }

    var truth: FirmwareModel.Truth { simulator.model.truth() }

    /// Waits until `condition` holds, up to `seconds`.
    func waitFor(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return condition()
    }

    /// Homes the lift, which a fresh robot needs before any lift move.
    func homeLift() async -> CommandFeedback? {
        await loop.run(.homeLift, timeout: 20)
    }
}
