import FirmwareProtocol
import Foundation
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// The real control loop in virtual time (`RobotTesting.VirtualRobot`): the same tick as
/// on the robot, stepped by hand against the simulator's firmware model through an
/// in-memory bus. Each test counts ticks exactly, where the HIL suite
/// (`ControlLoopHILTests`) can only bound wall-clock times on a loaded machine.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ControlLoopTests {
    static func robot(_ configure: (inout ControlConfiguration) -> Void = { _ in }) async throws -> VirtualRobot {
        var configuration = ControlConfiguration()
        configure(&configuration)
        return try await VirtualRobot(scenario: LoopHarness.scenario(), configuration: configuration)
    }

    @Test func walksAndRaisesToTargetsWithinTolerance() async throws {
        let robot = try await Self.robot()
        let start = robot.truth
        let walk = robot.perform(.walk(metres: 0.4, speedMetresPerSecond: nil), within: 10)
        #expect(walk?.state == .done, "walk: \(String(describing: walk))")
        #expect(abs(robot.truth.x - start.x - 0.4) <= 0.005, "walked \(robot.truth.x - start.x) m")
        #expect(abs(robot.loop.snapshot().xMetres - (start.x + 0.4)) <= 0.005)
        #expect(robot.perform(.homeLift, within: 20)?.state == .done)
        let raise = robot.perform(.lift(heightMetres: 0.6), within: 10)
        #expect(raise?.state == .done, "lift: \(String(describing: raise))")
        #expect(abs(robot.truth.liftMetres - 0.6) <= 0.003, "lift at \(robot.truth.liftMetres) m")
        #expect(robot.loop.snapshot().stopCause == nil)
    }

    /// The e-stop latches in the first tick after the request and its write reaches the
    /// firmware in the bus turn right after that tick: power is off one period later.
    @Test func anEstopLatchesOnTheNextTickAndCutsPowerOnePeriodLater() async throws {
        let robot = try await Self.robot()
        let walk = robot.loop.submit(.walk(metres: 3, speedMetresPerSecond: nil))
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond > 0.3 }, within: 5))
        let before = robot.loop.snapshot().tick
        let (id, ticket) = robot.loop.estop()
        robot.step()
        let latched = robot.loop.snapshot()
        #expect(latched.estopRequestsServed >= ticket)
        #expect(latched.estopServedAtTick == before + 1)
        #expect(latched.stopCause == .softwareEstop)
        #expect(robot.truth.motionPowerOn, "the write is on the bus, not yet at the firmware")
        robot.step()
        #expect(!robot.truth.motionPowerOn, "power off one period after the latching tick")
        #expect(robot.loop.feedback(id)?.state == .done)
        robot.run(seconds: 0.1)
        #expect(robot.loop.feedback(walk)?.problem == .stopped(.softwareEstop))
        // Motion is refused until the e-stop is released; resetFault alone does not release it.
        #expect(robot.perform(.walk(metres: 0.1, speedMetresPerSecond: nil))?.state == .blocked)
        #expect(robot.perform(.resetFault)?.state == .blocked)
        let release = robot.perform(.releaseEstop, within: 5)
        #expect(release?.state == .done, "release: \(String(describing: release))")
        #expect(robot.loop.snapshot().stopCause == nil)
        #expect(robot.truth.motionPowerOn)
    }

    /// 100 rounds: a burst of 200 commands fills the 64-place queue, then an e-stop.
    /// Every time it latches on exactly the next tick.
    @Test func anEstopBehindAFullCommandQueueLatchesOnTheNextTickEveryTime() async throws {
        let robot = try await Self.robot()
        for round in 0..<100 {
            var refused = 0
            for _ in 0..<200 where robot.loop.feedback(robot.loop.submit(.measure(seconds: 1)))?.problem == .mailboxFull {
                refused += 1
            }
            #expect(refused > 0, "round \(round): the queue should have been full")
            let before = robot.loop.snapshot().tick
            let (_, ticket) = robot.loop.estop()
            robot.step()
            let s = robot.loop.snapshot()
            #expect(s.estopRequestsServed >= ticket && s.estopServedAtTick == before + 1, "round \(round)")
            #expect(robot.perform(.releaseEstop, within: 30)?.state == .done, "round \(round)")
        }
    }

    @Test func aCutLinkStopsMotionAndNamesTheLostDeviceAndAResetRecovers() async throws {
        let robot = try await Self.robot()
        let walk = robot.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond > 0.3 }, within: 5))
        robot.bus.setLink(up: false)
        // Nothing gets through, so the firmware's own watchdog stops the robot.
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond == 0 }, within: 1.5))
        robot.run(seconds: 0.5)
        guard case .stopped(.lostLink(let device, let missed))? = robot.loop.feedback(walk)?.problem else {
            Issue.record("expected a lost-link stop, got \(String(describing: robot.loop.feedback(walk)))")
            return
        }
        #expect([RobotDevice.safety, .chassis, .lift].contains(device))
        #expect(missed >= 3, "a lost link is declared after several missed polls, not one")
        robot.bus.setLink(up: true)
        robot.run(seconds: 0.5)
        let x = robot.truth.x
        let reset = robot.perform(.resetFault, within: 5)
        #expect(reset?.state == .done, "reset: \(String(describing: reset))")
        robot.run(seconds: 1)
        #expect(robot.truth.x == x, "nothing moves by itself after the reset")
    }

    @Test func theDeadmanStopsMotionOneTimeoutAfterTheLastKeepAlive() async throws {
        let robot = try await Self.robot { $0.deadmanTimeoutSeconds = 0.5 }
        robot.loop.armDeadman(true)
        let walk = robot.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        for _ in 0..<20 {
            robot.loop.keepAlive()
            robot.run(seconds: 0.05)
        }
        #expect(robot.truth.speedMetresPerSecond > 0.3, "still walking while keep-alives come")
        robot.loop.keepAlive()
        let lastKeepAlive = robot.seconds
        #expect(robot.run(until: { robot.loop.snapshot().stopCause != nil }, within: 2))
        let tripAfter = robot.seconds - lastKeepAlive
        #expect(tripAfter >= 0.5 && tripAfter <= 0.5 + 0.02, "tripped \(tripAfter) s after the last keep-alive")
        guard case .deadman? = robot.loop.snapshot().stopCause else {
            Issue.record("stop cause \(String(describing: robot.loop.snapshot().stopCause))")
            return
        }
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond == 0 }, within: 3))
        guard case .stopped(.deadman)? = robot.loop.feedback(walk)?.problem else {
            Issue.record("walk should fail with the deadman cause")
            return
        }
    }

    @Test func aDriveFaultIsResetAndTheDriveDoesNotJump() async throws {
        let robot = try await Self.robot()
        let walk = robot.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond > 0.3 }, within: 5))
        robot.model.inject(.driveFault(device: "chassis", code: 1))
        #expect(robot.run(until: { robot.loop.feedback(walk)?.state.isFinal == true }, within: 3))
        #expect(robot.loop.feedback(walk)?.state == .failed)
        #expect(robot.loop.snapshot().stopCause == .driveFault(device: .chassis, code: 1))
        #expect(robot.perform(.resetFault, within: 5)?.state == .done)
        let x = robot.truth.x
        robot.run(seconds: 1)
        #expect(robot.truth.x == x, "the drive resumed its old walk after the reset")
        #expect(robot.perform(.walk(metres: 0.2, speedMetresPerSecond: nil), within: 10)?.state == .done)
        #expect(abs(robot.truth.x - x - 0.2) <= 0.005)
    }

    @Test func aCommandPastItsExpiryIsRefused() async throws {
        let robot = try await Self.robot()
        let id = robot.loop.submit(.walk(metres: 1, speedMetresPerSecond: nil), expiresAtNanoseconds: robot.clock.nanoseconds() - 1)
        robot.step()
        #expect(robot.loop.feedback(id)?.state == .expired)
        robot.run(seconds: 0.5)
        #expect(robot.truth.speedMetresPerSecond == 0)
    }

    @Test func aShutdownHaltStopsMotionAndRefusesLaterMotionButParking() async throws {
        let robot = try await Self.robot()
        #expect(robot.perform(.homeLift, within: 20)?.state == .done)
        let walk = robot.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond > 0.3 }, within: 5))
        let before = robot.loop.snapshot().tick
        let ticket = robot.loop.requestHalt(inhibitMotion: true)
        robot.step()
        #expect(robot.loop.snapshot().haltRequestsServed >= ticket && robot.loop.snapshot().haltServedAtTick == before + 1)
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond == 0 }, within: 3))
        #expect(robot.loop.feedback(walk)?.state.isFinal == true)
        #expect(robot.perform(.lift(heightMetres: 1.0))?.problem == .shuttingDown)
        let park = robot.perform(.lift(heightMetres: robot.loop.configuration.liftParkMetres), within: 20)
        #expect(park?.state == .done, "parking is still allowed: \(String(describing: park))")
    }

    /// A loop on a virtual clock cannot be started on the real-time thread: the thread
    /// runs on CLOCK_MONOTONIC, and mixing the two clocks would expire every command.
    @Test func aLoopOnAVirtualClockRefusesTheRealTimeThread() async throws {
        let robot = try await Self.robot()
        await #expect(throws: ControlLoop.StartError.self) { try await robot.loop.start() }
        do {
            try await robot.loop.start()
        } catch {
            #expect(error.description.contains("startStepped()"), "\(error)")
        }
    }

    /// Virtual time is exact: the same commands on the same seed give the same readings.
    @Test func theSameSeedAndCommandsGiveTheSameReadingsBitForBit() async throws {
        func readings() async throws -> [Double] {
            let robot = try await Self.robot()
            var values: [Double] = []
            for _ in 0..<5 {
                let feedback = robot.perform(.measure(seconds: 1), within: 5)
                values.append(feedback?.reading?.countRatePerSecond ?? -1)
                _ = robot.perform(.walk(metres: 0.3, speedMetresPerSecond: nil), within: 10)
            }
            return values
        }
        let first = try await readings()
        let second = try await readings()
        #expect(first == second)
        #expect(!first.contains(-1))
        #expect(Set(first).count > 1, "counts vary from reading to reading: \(first)")
    }
}
