import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// The chassis and lift reach their targets with the kinematics of
/// `docs/domain.md`, Robot: 0.5 m/s and 0.5 m/s² for the chassis,
/// 0.2 m/s and 0.4 m/s² for the lift. Physics is stepped by hand in 10 ms steps.
@Suite(.serialized, .enabled(if: Rig.isSimulator, "needs the simulator's true pose"), .enabled(if: TestTier.hil), .timeLimit(.minutes(10)))
struct KinematicsTests {
    struct Trace {
        var seconds = 0.0
        var peakSpeed = 0.0
        var peakAcceleration = 0.0
    }

    /// Advances physics until `done` holds (checked every 100 ms of simulated time),
    /// refreshing the watchdog every simulated second; records speed and acceleration.
    func run(_ robot: SimulatedRobot, _ driver: inout ManualDriver, limit: Double, speed: (FirmwareModel.Truth) -> Double,
             until done: () async throws -> Bool) async throws -> Trace {
        var trace = Trace()
        var previous = speed(robot.truth)
        let dt = 0.01
        var sinceRefresh = 0.0
        while trace.seconds < limit {
            robot.advance(dt)
            trace.seconds += dt
            sinceRefresh += dt
            let v = speed(robot.truth)
            trace.peakSpeed = max(trace.peakSpeed, abs(v))
            trace.peakAcceleration = max(trace.peakAcceleration, abs(v - previous) / dt)
            previous = v
            if sinceRefresh >= 1 {
                try await driver.refreshWatchdog()
                sinceRefresh = 0
            }
            if Int((trace.seconds * 100).rounded()) % 10 == 0, try await done() { return trace }
        }
        Issue.record("did not finish within \(limit) s")
        return trace
    }

    @Test func walksThreeMetresWithinFiveMillimetresOnATrapezoid() async throws {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        let start = robot.truth
        try await driver.walk(millimetres: 3000)
        let trace = try await run(robot, &driver, limit: 12, speed: { $0.speedMetresPerSecond }) {
            let s = try await robot.bus.read(ChassisStatus.self, unit: 2)
            return s.flags.contains(.targetReached) && !s.flags.contains(.moving)
        }
        let status = try await robot.bus.read(ChassisStatus.self, unit: 2)
        let end = robot.truth
        #expect(abs(end.x - start.x - 3.0) < 0.001, "true travel \(end.x - start.x) m")
        let reportedTravel = status.positionXMetres - start.x
        #expect(abs(reportedTravel - 3.0) <= 0.005, "odometry says \(reportedTravel) m")
        #expect(trace.peakSpeed <= 0.5 + 1e-9 && trace.peakSpeed > 0.49, "peak speed \(trace.peakSpeed)")
        #expect(trace.peakAcceleration <= 0.5 + 0.05, "peak acceleration \(trace.peakAcceleration)")
        // Trapezoid: d/v + v/a = 3/0.5 + 0.5/0.5 = 7 s (checked to the 0.1 s polling grain).
        #expect(abs(trace.seconds - 7.0) <= 0.15, "took \(trace.seconds) s")
    }

    @Test func turnsOnTheSpotAndDrivesToAPoint() async throws {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        try await driver.start(ChassisCommand(controlword: .enableOperationCommand, mode: .turnRelative, targetA: 9000,
                                              turnRateCentidegreesPerSecond: 4500))
        _ = try await run(robot, &driver, limit: 10, speed: { _ in 0 }) {
            try await robot.bus.read(ChassisStatus.self, unit: 2).flags.contains(.targetReached)
        }
        #expect(abs(robot.truth.headingDegrees - 90) < 0.05, "heading \(robot.truth.headingDegrees)")
        // Drive to (-14, 3): turn towards it, then straight.
        try await driver.start(ChassisCommand(controlword: .enableOperationCommand, mode: .moveTo, targetA: -14_000, targetB: 3000))
        _ = try await run(robot, &driver, limit: 20, speed: { $0.speedMetresPerSecond }) {
            try await robot.bus.read(ChassisStatus.self, unit: 2).flags.contains(.targetReached)
        }
        let status = try await robot.bus.read(ChassisStatus.self, unit: 2)
        #expect(abs(status.positionXMetres + 14) <= 0.005 && abs(status.positionYMetres - 3) <= 0.005,
                "arrived at (\(status.positionXMetres), \(status.positionYMetres))")
    }

    @Test func liftHomesThenRaisesToTwoAndAHalfMetres() async throws {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        var status = try await robot.bus.read(LiftStatus.self, unit: 3)
        #expect(!status.flags.contains(.homed))
        #expect(status.heightMillimetres == 0, "an unhomed lift reports no height")
        try await driver.lift(.homing)
        _ = try await run(robot, &driver, limit: 20, speed: { $0.liftSpeedMetresPerSecond }) {
            try await robot.bus.read(LiftStatus.self, unit: 3).flags.contains(.homed)
        }
        status = try await robot.bus.read(LiftStatus.self, unit: 3)
        // Homing finds the lower switch (0.290 m) and backs off it to 0.300 m (L6.3).
        #expect(!status.flags.contains(.lowerLimit))
        #expect(status.heightMillimetres == 300)
        try await driver.lift(.profilePosition, heightMillimetres: 2500)
        let trace = try await run(robot, &driver, limit: 20, speed: { $0.liftSpeedMetresPerSecond }) {
            let s = try await robot.bus.read(LiftStatus.self, unit: 3)
            return s.flags.contains(.targetReached) && !s.flags.contains(.moving)
        }
        status = try await robot.bus.read(LiftStatus.self, unit: 3)
        #expect(abs(Int(status.heightMillimetres) - 2500) <= 3, "height \(status.heightMillimetres) mm")
        #expect(abs(robot.truth.liftMetres - 2.5) <= 0.003)
        #expect(trace.peakSpeed <= 0.2 + 1e-9 && trace.peakSpeed > 0.19, "peak lift speed \(trace.peakSpeed)")
        #expect(trace.peakAcceleration <= 0.4 + 0.05)
        // (2.5 − 0.3)/0.2 + 0.2/0.4 = 11.5 s.
        #expect(abs(trace.seconds - 11.5) <= 0.15, "took \(trace.seconds) s")
    }
}
