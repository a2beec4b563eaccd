import FirmwareProtocol
import Foundation
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// The safety supervisor, the reset sequence, lost writes, command validation and
/// measurement, in virtual time: each fault lands on an exact tick, so each test shows
/// the loop's answer to it, not the machine's timing. (`ControlLoopHILTests` shows the
/// same on a pty in real time.)
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ControlLoopFaultTests {
    static var chassisUnit: UInt8 { RegisterMap.chassis.unitId }

    // MARK: Lost writes

    /// The bus does not send a failed write again. A stop whose halt write was lost used to
    /// leave the drive running on to its old target; the loop posts the halt again.
    @Test func aStopWhoseHaltWriteIsLostIsPostedAgain() async throws {
        let robot = try await ControlLoopTests.robot()
        let walk = robot.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond > 0.3 }, within: 5))
        robot.bus.loseWrites(unit: Self.chassisUnit, count: 1)
        let startX = robot.truth.x
        #expect(robot.perform(.stop, within: 1)?.state == .done)
        #expect(robot.loop.feedback(walk)?.state == .overridden)
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond == 0 }, within: 3), "still moving at \(robot.truth.speedMetresPerSecond) m/s")
        #expect(robot.bus.pendingFaults.lostWrites.isEmpty, "the halt write was the one lost")
        #expect(robot.truth.x - startX < 1.5, "walked \(robot.truth.x - startX) m after the stop")
        #expect(robot.loop.snapshot().stopCause == nil, "nothing else stopped it")
        #expect(robot.truth.motionPowerOn)
    }

    @Test func aDeadmanStopWhoseHaltWriteIsLostIsPostedAgain() async throws {
        let robot = try await ControlLoopTests.robot { $0.deadmanTimeoutSeconds = 0.3 }
        robot.loop.armDeadman(true)
        _ = robot.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        for _ in 0..<30 where robot.truth.speedMetresPerSecond <= 0.3 {
            robot.loop.keepAlive()
            robot.run(seconds: 0.05)
        }
        #expect(robot.truth.speedMetresPerSecond > 0.3)
        robot.bus.loseWrites(unit: Self.chassisUnit, count: 1)
        let startX = robot.truth.x
        #expect(robot.run(until: {
            if case .deadman? = robot.loop.snapshot().stopCause { return true }
            return false
        }, within: 1))
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond == 0 }, within: 3), "still moving at \(robot.truth.speedMetresPerSecond) m/s")
        #expect(robot.bus.pendingFaults.lostWrites.isEmpty)
        #expect(robot.truth.x - startX < 1.8, "walked \(robot.truth.x - startX) m after the deadman stop")
        #expect(robot.truth.motionPowerOn, "the halt, not a power cut, stopped it")
    }

    @Test func aNewCommandDoesNotInheritAnEarlierCommandsLostWrite() async throws {
        let robot = try await ControlLoopTests.robot()
        robot.bus.loseWrites(unit: Self.chassisUnit, count: 1)
        let first = robot.perform(.walk(metres: 0.2, speedMetresPerSecond: nil), within: 5)
        #expect(first?.state == .failed)
        guard case .busError(let reason)? = first?.problem else {
            Issue.record("the first walk should fail with a bus error, got \(String(describing: first))")
            return
        }
        #expect(reason.contains("chassis") && reason.contains("send the command again"), "\(reason)")
        let startX = robot.truth.x
        let second = robot.perform(.walk(metres: 0.2, speedMetresPerSecond: nil), within: 10)
        #expect(second?.state == .done, "the second walk: \(String(describing: second))")
        #expect(abs(robot.truth.x - startX - 0.2) <= 0.005, "walked \(robot.truth.x - startX) m")
    }

    /// A drive whose polls keep failing holds its command (one missed poll is not a lost
    /// drive), but never past the command's own deadline, even when the lost-link limit is
    /// set so high that the supervisor would take minutes to declare it.
    @Test func aCommandWaitingOutMissedPollsStillFailsAtItsDeadline() async throws {
        let robot = try await ControlLoopTests.robot {
            $0.lostLinkMissedPolls = 1000
            $0.chassisPollMilliseconds = 200
        }
        let walk = robot.loop.submit(.walk(metres: 0.1, speedMetresPerSecond: nil))
        robot.step()
        robot.bus.losePolls(unit: Self.chassisUnit, count: 100_000)
        #expect(robot.run(until: { robot.loop.feedback(walk)?.state.isFinal == true }, within: 30))
        guard case .timedOut? = robot.loop.feedback(walk)?.problem else {
            Issue.record("expected the walk's deadline to end it: \(String(describing: robot.loop.feedback(walk)))")
            return
        }
        #expect(robot.seconds < 10, "ended after \(robot.seconds) s; the deadline for 0.1 m is a few seconds")
        #expect(robot.loop.snapshot().stopCause == nil, "the supervisor's limit was not reached")
    }

    // MARK: Reset

    /// A reset answers within its 2 s even when its writes cannot reach the firmware, names
    /// the cause still present, and a reset once the link is back works.
    @Test func aResetWhoseWritesCannotLandFailsInTimeAndALaterResetWorks() async throws {
        let robot = try await ControlLoopTests.robot()
        robot.model.inject(.driveFault(device: "chassis", code: 7))
        #expect(robot.run(until: { robot.loop.snapshot().stopCause == .driveFault(device: .chassis, code: 7) }, within: 1))
        robot.bus.setLink(up: false)
        let started = robot.seconds
        let reset = robot.perform(.resetFault, within: 6)
        #expect(reset?.state == .failed, "reset during a link drop: \(String(describing: reset))")
        #expect(robot.seconds - started <= 2.1, "the reset took \(robot.seconds - started) s to give up")
        guard case .causeStillPresent(.lostLink)? = reset?.problem else {
            Issue.record("the refusal should name the lost link: \(String(describing: reset?.problem))")
            return
        }
        #expect(robot.loop.snapshot().stopCause != nil, "still stopped after a failed reset")
        #expect(robot.perform(.resetFault, within: 3)?.state != .done, "refused while the link is down")
        robot.bus.setLink(up: true)
        robot.run(seconds: 0.5)
        let again = robot.perform(.resetFault, within: 5)
        #expect(again?.state == .done, "reset after the link came back: \(String(describing: again))")
        #expect(robot.loop.snapshot().stopCause == nil)
        #expect(robot.truth.speedMetresPerSecond == 0)
    }

    /// Found by the fault soak: a reset's write to a drive was lost, and every later reset
    /// waited for it and failed; the robot could not be recovered.
    @Test func aDriveWriteLostDuringAResetDoesNotBlockTheNextReset() async throws {
        let robot = try await ControlLoopTests.robot()
        robot.model.inject(.driveFault(device: "chassis", code: 9))
        #expect(robot.run(until: { robot.loop.snapshot().stopCause == .driveFault(device: .chassis, code: 9) }, within: 1))
        robot.bus.loseWrites(unit: Self.chassisUnit, count: 1)
        let first = robot.perform(.resetFault, within: 5)
        #expect(robot.bus.pendingFaults.lostWrites.isEmpty, "the reset's chassis write was lost")
        if first?.state != .done {
            let again = robot.perform(.resetFault, within: 5)
            #expect(again?.state == .done, "the next reset after a lost write: \(String(describing: again))")
        }
        #expect(robot.loop.snapshot().stopCause == nil)
        #expect(robot.perform(.walk(metres: 0.1, speedMetresPerSecond: nil), within: 10)?.state == .done)
    }

    // MARK: Command validation

    @Test func aLiftTargetOutOfRangeIsRefusedWithTheAllowedRange() async throws {
        let robot = try await ControlLoopTests.robot()
        let feedback = robot.perform(.lift(heightMetres: 3.5))
        #expect(feedback?.state == .blocked)
        #expect(feedback?.problem?.description == "lift height 3.500 m is out of range; allowed 0.350 to 2.750 m")
        #expect(robot.perform(.lift(heightMetres: 1.0))?.problem == .liftNotHomed)
    }

    @Test func aNewMotionCommandOverridesTheOldOne() async throws {
        let robot = try await ControlLoopTests.robot()
        let first = robot.loop.submit(.walk(metres: 3, speedMetresPerSecond: nil))
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond > 0.2 }, within: 5))
        #expect(robot.perform(.stop, within: 2)?.state == .done)
        #expect(robot.loop.feedback(first)?.state == .overridden)
        #expect(robot.run(until: { robot.truth.speedMetresPerSecond == 0 }, within: 3))
    }

    @Test func aPathIntoAKeepOutZoneIsRefusedAndARobotInsideAMarginMayLeaveByTheShortWayOnly() async throws {
        let container = try await ControlLoopTests.robot {
            $0.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 6.108, maxY: 0.05)]
        }
        #expect(container.perform(.walkTo(x: 3, y: -1, speedMetresPerSecond: nil))?.problem == .keepOut(x: 3, y: -1))
        // A zone drawn round the robot's start (x -12, y 1).
        let inside = try await ControlLoopTests.robot {
            $0.keepOutZones = [KeepOutZone(minX: -12.1, minY: -1.5, maxX: -9, maxY: 1.04)]
        }
        #expect(inside.perform(.walkTo(x: -12, y: -2.5, speedMetresPerSecond: nil))?.problem == .keepOut(x: -12, y: -2.5))
        let out = inside.perform(.walkTo(x: -12, y: 1.3, speedMetresPerSecond: nil), within: 20)
        #expect(out?.state == .done, "out by 4 cm of zone: \(String(describing: out))")
    }

    // MARK: Measurement

    @Test func measureReturnsAReadingWithItsUncertainty() async throws {
        let robot = try await ControlLoopTests.robot()
        let reading = try #require(robot.perform(.measure(seconds: 3), within: 10)?.reading)
        #expect(abs(reading.seconds - 3) < 0.1)
        // Background 0.1 µSv/h at 300 cps per µSv/h: about 90 counts in 3 s, σ ≈ 10.
        #expect(reading.counts > 40 && reading.counts < 150, "counts \(reading.counts)")
        #expect(abs(reading.doseRateMicrosievertsPerHour - 0.1) < 4 * reading.doseRateUncertaintyMicrosievertsPerHour)
        #expect(abs(reading.countRateUncertaintyPerSecond - Double(reading.counts).squareRoot() / reading.seconds) < 0.01)
    }

    @Test func aResetClearsTheDetectorOverloadLatchSoMeasuringWorksAgain() async throws {
        let robot = try await ControlLoopTests.robot()
        let measuring = robot.loop.submit(.measure(seconds: 2))
        robot.run(seconds: 0.3)
        robot.model.inject(.detectorOverload(true))
        #expect(robot.run(until: { robot.loop.feedback(measuring)?.state.isFinal == true }, within: 5))
        #expect(robot.loop.feedback(measuring)?.state == .failed)
        #expect(robot.loop.snapshot().stopCause == .detectorOverload)
        robot.model.inject(.detectorOverload(false))
        robot.run(seconds: 0.2)
        #expect(robot.loop.snapshot().detectorOverload, "the latch holds in the firmware until it is cleared")
        #expect(robot.perform(.resetFault, within: 5)?.state == .done)
        #expect(robot.run(until: { !robot.loop.snapshot().detectorOverload }, within: 2))
        #expect(robot.perform(.measure(seconds: 1), within: 10)?.state == .done)
        #expect(robot.loop.snapshot().stopCause == nil)
    }

    @Test func aDetectorRestartDuringAMeasurementFailsItInsteadOfRecordingGarbage() async throws {
        let robot = try await ControlLoopTests.robot()
        let measuring = robot.loop.submit(.measure(seconds: 3))
        robot.run(seconds: 1)
        robot.model.inject(.restart(device: "detector"))
        #expect(robot.run(until: { robot.loop.feedback(measuring)?.state.isFinal == true }, within: 10))
        let feedback = robot.loop.feedback(measuring)
        #expect(feedback?.state == .failed, "\(String(describing: feedback))")
        #expect(feedback?.reading == nil)
        #expect(feedback?.problem == .detectorRestarted, "\(String(describing: feedback?.problem))")
    }

    // Protocol 1.1, W7.5: a safety unit that restarts mid-run keeps its chain open (the
    // controller's refreshes alone do not power the drives) until an officer's reset.
    @Test func aSafetyUnitRestartHoldsTheRobotUntilAReset() async throws {
        let robot = try await ControlLoopTests.robot()
        #expect(robot.perform(.walk(metres: 0.2, speedMetresPerSecond: nil), within: 10)?.state == .done)
        robot.model.inject(.restart(device: "safety"))
        #expect(robot.run(until: { robot.loop.snapshot().stopCause != nil }, within: 2))
        robot.run(seconds: 2)
        #expect(!robot.truth.motionPowerOn, "the interlock holds while the watchdog is refreshed")
        #expect(robot.perform(.walk(metres: 0.1, speedMetresPerSecond: nil), within: 5)?.state == .blocked)
        #expect(robot.perform(.resetFault, within: 5)?.state == .done)
        #expect(robot.truth.motionPowerOn)
        #expect(robot.perform(.walk(metres: 0.1, speedMetresPerSecond: nil), within: 10)?.state == .done)
    }

    // Q9.4: a chassis that restarts loses its pose; the stop names it, and the reset gives
    // the chassis back the pose it last reported, so the yard frame survives the restart.
    @Test func aChassisRestartStopsTheRobotAndTheResetGivesItsPoseBack() async throws {
        let robot = try await ControlLoopTests.robot()
        #expect(robot.perform(.walk(metres: 0.5, speedMetresPerSecond: nil), within: 10)?.state == .done)
        let before = robot.loop.snapshot()
        robot.model.inject(.restart(device: "chassis"))
        #expect(robot.run(until: { robot.loop.snapshot().stopCause != nil }, within: 2))
        robot.run(seconds: 1)
        #expect(robot.loop.snapshot().stopCause == .firmwareRestarted(device: .chassis) || robot.loop.snapshot().stopCause == .lostLink(device: .chassis, missedPolls: 5),
                "\(String(describing: robot.loop.snapshot().stopCause))")
        #expect(robot.perform(.resetFault, within: 5)?.state == .done)
        robot.run(seconds: 0.2)
        let after = robot.loop.snapshot()
        #expect(abs(after.xMetres - before.xMetres) < 0.002 && abs(after.yMetres - before.yMetres) < 0.002,
                "pose back: (\(after.xMetres), \(after.yMetres)) vs (\(before.xMetres), \(before.yMetres))")
        let x = robot.truth.x
        #expect(robot.perform(.walk(metres: 0.2, speedMetresPerSecond: nil), within: 10)?.state == .done)
        #expect(abs(robot.truth.x - x - 0.2) < 0.005)
    }
}
