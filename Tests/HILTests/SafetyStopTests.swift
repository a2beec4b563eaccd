import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// E-stop, the firmware watchdog and the bumper cut motion in the simulated firmware,
/// and the drives never resume an old set-point afterwards.
@Suite(.serialized, .enabled(if: Rig.isSimulator, "needs the simulator's true speed"), .enabled(if: TestTier.hil), .timeLimit(.minutes(10)))
struct SafetyStopTests {
    /// Starts a long walk and lets it reach cruise speed.
    func cruising() async throws -> (SimulatedRobot, ManualDriver) {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        try await driver.walk(millimetres: 8000)
        robot.advance(1.5)
        #expect(robot.truth.speedMetresPerSecond > 0.45)
        return (robot, driver)
    }

    @Test func softwareEstopStopsMotionWithinOneStep() async throws {
        var (robot, driver) = try await cruising()
        try await driver.refreshWatchdog(outputs: [.softwareEstop])
        robot.advance(0.005)
        let truth = robot.truth
        #expect(truth.speedMetresPerSecond == 0)
        #expect(!truth.motionPowerOn)
        #expect(truth.chassisState == .switchOnDisabled)
        let safety = try await robot.bus.read(SafetyStatus.self, unit: 1)
        #expect(safety.flags.contains([.estopLatched, .softwareEstop]))
        let x = truth.x
        robot.advance(1)
        #expect(robot.truth.x == x, "no creep after the stop")
        // A new set-point is refused while the chain is open.
        do {
            try await driver.walk(millimetres: 1000)
            Issue.record("a walk during e-stop must be refused")
        } catch let error as BusError {
            #expect(error.kind == .exception(code: ModbusException.serverDeviceFailure.rawValue))
        }
    }

    @Test func hardwareEstopButtonStopsMotionAndResetNeedsTheButtonReleased() async throws {
        var (robot, driver) = try await cruising()
        robot.model.inject(.estopButton(true))
        robot.advance(0.005)
        #expect(robot.truth.speedMetresPerSecond == 0)
        #expect(try await robot.bus.read(SafetyStatus.self, unit: 1).flags.contains([.estopButton, .estopLatched]))
        // A reset edge while the button is still pressed does nothing.
        try await driver.refreshWatchdog(outputs: [])
        try await driver.refreshWatchdog(outputs: [.estopReset])
        #expect(try await robot.bus.read(SafetyStatus.self, unit: 1).flags.contains(.estopLatched))
        robot.model.inject(.estopButton(false))
        try await driver.refreshWatchdog(outputs: [])
        try await driver.refreshWatchdog(outputs: [.estopReset])
        let safety = try await robot.bus.read(SafetyStatus.self, unit: 1)
        #expect(!safety.flags.contains(.estopLatched))
        #expect(safety.flags.contains(.motionPowerOn))
        // Re-enabling does not resume the interrupted 8 m walk.
        try await driver.enable(unit: 2)
        let x = robot.truth.x
        robot.advance(2)
        #expect(robot.truth.x == x, "re-enabled drive moved without a new set-point")
    }

    @Test func watchdogExpiryStopsMotion() async throws {
        let (robot, _) = try await cruising()
        // No more refreshes: the 2 s watchdog runs out (last refresh was 1.5 s ago).
        robot.advance(0.4)
        #expect(robot.truth.speedMetresPerSecond > 0.45, "still inside the timeout")
        robot.advance(0.2)
        #expect(robot.truth.speedMetresPerSecond == 0)
        let safety = try await robot.bus.read(SafetyStatus.self, unit: 1)
        #expect(safety.flags.contains(.watchdogExpired))
        #expect(!safety.flags.contains(.motionPowerOn))
    }

    @Test func bumperOnAContainerWallStopsAndFaultsTheChassis() async throws {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        // Straight at the 20 ft container's door end.
        try await driver.start(ChassisCommand(controlword: .enableOperationCommand, mode: .moveTo, targetA: 2000, targetB: -1000))
        for _ in 0..<40 {
            robot.advance(1)
            try await driver.refreshWatchdog()
        }
        let status = try await robot.bus.read(ChassisStatus.self, unit: 2)
        #expect(status.driveState == .fault)
        #expect(status.faultCode == 5)
        #expect(robot.truth.x < 0 && robot.truth.x > -0.1, "stopped at the wall, x = \(robot.truth.x)")
    }
}
