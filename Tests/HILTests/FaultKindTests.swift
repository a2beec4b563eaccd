import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// Each fault the simulator can inject is seen by the real I/O layer as the right
/// typed error or the right status, and the bus carries on afterwards.
@Suite(.serialized, .enabled(if: Rig.isSimulator, "injects faults into the simulator"), .enabled(if: TestTier.hil), .timeLimit(.minutes(10)))
struct FaultKindTests {
    func failure(_ robot: SimulatedRobot, unit: UInt8 = 2) async -> BusError? {
        do {
            _ = try await robot.bus.read(ChassisStatus.self, unit: unit)
            return nil
        } catch {
            return error
        }
    }

    @Test func busFaultsBecomeTypedErrors() async throws {
        let robot = try SimulatedRobot(scenario: try Rig.scenario("hil/scenarios/clean-20ft.yaml"), responseTimeoutMilliseconds: 40, maxRetries: 0)
        let faults = robot.simulator.faults

        faults.enqueue(.noReply, unit: 2)
        #expect(await failure(robot)?.kind == .timeout(milliseconds: 40))

        faults.enqueue(.lateReply(milliseconds: 60), unit: 2)
        #expect(await failure(robot)?.kind == .timeout(milliseconds: 40))

        faults.enqueue(.crcError, unit: 2)
        #expect(await failure(robot)?.kind == .crcMismatch)

        faults.enqueue(.exception(code: 4), unit: 2)
        let exception = await failure(robot)
        #expect(exception?.kind == .exception(code: 4))
        #expect(exception?.reason.contains("cannot do this now") == true, "\(String(describing: exception?.reason))")

        faults.enqueue(.junkBytes(count: 11), unit: 2)
        let junk = await failure(robot)
        #expect(junk?.isTransient == true, "junk gave \(String(describing: junk))")

        // The two halves of the reply arrive further apart than the 5 ms byte timeout.
        faults.enqueue(.splitFrame(gapMilliseconds: 30), unit: 2)
        let split = await failure(robot)
        #expect(split?.isTransient == true, "split frame gave \(String(describing: split))")

        // After all that, the line is clean.
        for _ in 0..<3 { _ = try await robot.bus.read(ChassisStatus.self, unit: 2) }
        let stats = try #require(robot.bus.statisticsSnapshot().first { $0.unitId == 2 })
        #expect(stats.timeouts >= 2)
        #expect(stats.crcErrors >= 1)
        #expect(stats.exceptions == 1)
    }

    /// A write-only fault passes the polls by and takes the next write, which does not
    /// reach the model: the loop's tests use it to lose one particular command write.
    @Test func aWriteOnlyFaultLetsReadsThroughAndLosesTheWrite() async throws {
        let robot = try SimulatedRobot(scenario: try Rig.scenario("hil/scenarios/clean-20ft.yaml"), responseTimeoutMilliseconds: 40, maxRetries: 0)
        robot.simulator.faults.enqueue(.noReply, unit: 4, times: 1, requests: .writes)
        for _ in 0..<3 { _ = try await robot.bus.read(DetectorStatus.self, unit: 4) }
        let command = DetectorCommand(control: [.highVoltageOn], alarmLevelNanosievertsPerHour: 777)
        do {
            try await robot.bus.write(command, unit: 4)
            Issue.record("the write went through the fault")
        } catch {
            #expect(error.kind == .timeout(milliseconds: 40))
        }
        #expect(try await robot.bus.read(DetectorCommand.self, unit: 4).alarmLevelNanosievertsPerHour != 777, "a lost write must not reach the model")
        // The fault is used up: the same write goes through now.
        try await robot.bus.write(command, unit: 4)
        #expect(try await robot.bus.read(DetectorCommand.self, unit: 4).alarmLevelNanosievertsPerHour == 777)
        #expect(robot.simulator.faults.counts()["noReply"] == 1)
    }

    @Test func aLinkDropTimesOutEveryUnitUntilItComesBack() async throws {
        let robot = try SimulatedRobot(scenario: try Rig.scenario("hil/scenarios/clean-20ft.yaml"), responseTimeoutMilliseconds: 30, maxRetries: 0)
        robot.simulator.faults.enqueue(.linkDrop(milliseconds: 300))
        for unit: UInt8 in [1, 2] {
            #expect(await failure(robot, unit: unit)?.kind == .timeout(milliseconds: 30) || unit == 1)
        }
        let recovered = await eventually(within: 3) { (try? await robot.bus.read(SafetyStatus.self, unit: 1)) != nil }
        #expect(recovered)
    }

    @Test func aRebootLosesDriveStateHomingAndCounts() async throws {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        try await driver.lift(.homing)
        for _ in 0..<10 {
            robot.advance(1)
            try await driver.refreshWatchdog()
        }
        #expect(try await robot.bus.read(LiftStatus.self, unit: 3).flags.contains(.homed))
        let before = try await robot.bus.read(DetectorStatus.self, unit: 4)
        robot.model.inject(.reboot)
        // Booting (F3.9): every unit answers exception 6 until it is ready.
        let booting = await failure(robot, unit: 2)
        #expect(booting?.kind == .exception(code: ModbusException.serverDeviceBusy.rawValue), "\(String(describing: booting))")
        robot.advance(0.4)
        let lift = try await robot.bus.read(LiftStatus.self, unit: 3)
        #expect(!lift.flags.contains(.homed))
        #expect(lift.driveState == .switchOnDisabled)
        #expect(try await robot.bus.read(ChassisStatus.self, unit: 2).driveState == .switchOnDisabled)
        let safety = try await robot.bus.read(SafetyStatus.self, unit: 1)
        #expect(safety.uptimeMilliseconds < 500)
        #expect(!safety.flags.contains(.motionPowerOn))
        #expect(safety.flags.contains(.bootInterlock), "power stays off until a refresh and a reset edge (W7.5)")
        let after = try await robot.bus.read(DetectorStatus.self, unit: 4)
        #expect(after.counts < before.counts)
        #expect(after.timeBaseMilliseconds < before.timeBaseMilliseconds)
    }

    @Test func aDriveFaultIsResetAndTheDriveDoesNotJump() async throws {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        try await driver.walk(millimetres: 5000)
        robot.advance(1)
        robot.model.inject(.driveFault(device: "chassis", code: 1))
        robot.advance(0.01)
        var status = try await robot.bus.read(ChassisStatus.self, unit: 2)
        #expect(status.driveState == .fault)
        #expect(status.faultCode == 1)
        #expect(robot.truth.speedMetresPerSecond == 0)
        try await driver.resetFault(unit: 2)
        status = try await robot.bus.read(ChassisStatus.self, unit: 2)
        #expect(status.driveState == .switchOnDisabled)
        #expect(status.faultCode == 0)
        try await driver.refreshWatchdog()
        try await driver.enable(unit: 2)
        let x = robot.truth.x
        robot.advance(2)
        #expect(robot.truth.x == x, "the drive resumed the old 5 m walk after its fault was reset")
    }

    @Test func aStuckLiftRaisesAFollowingError() async throws {
        let robot = try SimulatedRobot()
        var driver = ManualDriver(bus: robot.bus)
        try await driver.powerUp()
        robot.model.inject(.liftStuck(true))
        try await driver.lift(.homing)
        robot.advance(1)
        let lift = try await robot.bus.read(LiftStatus.self, unit: 3)
        #expect(lift.driveState == .fault)
        #expect(lift.faultCode == 2)
    }

    @Test func detectorOverloadLatchesAndClears() async throws {
        let robot = try SimulatedRobot()
        robot.model.inject(.detectorOverload(true))
        robot.advance(0.1)
        #expect(try await robot.bus.read(DetectorStatus.self, unit: 4).flags.contains(.overload))
        robot.model.inject(.detectorOverload(false))
        robot.advance(0.1)
        #expect(try await robot.bus.read(DetectorStatus.self, unit: 4).flags.contains(.overload), "overload latches")
        try await robot.bus.write(DetectorCommand(control: [.highVoltageOn], alarmLevelNanosievertsPerHour: 250), unit: 4)
        try await robot.bus.write(DetectorCommand(control: [.highVoltageOn, .clearOverload], alarmLevelNanosievertsPerHour: 250), unit: 4)
        #expect(!(try await robot.bus.read(DetectorStatus.self, unit: 4).flags.contains(.overload)))
    }

    @Test func aDeadDetectorStopsCountingAndRaisesFault16() async throws {
        let robot = try SimulatedRobot()
        robot.advance(1)
        robot.model.inject(.detectorDead(true))
        let first = try await robot.bus.read(DetectorStatus.self, unit: 4)
        robot.advance(5)
        let second = try await robot.bus.read(DetectorStatus.self, unit: 4)
        #expect(second.counts == first.counts)
        #expect(!second.flags.contains(.dataValid))
        robot.advance(6)
        let third = try await robot.bus.read(DetectorStatus.self, unit: 4)
        #expect(third.flags.contains(.fault))
        #expect(third.faultCode == 16)
    }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass.
func eventually(within seconds: Double, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return await condition()
}
