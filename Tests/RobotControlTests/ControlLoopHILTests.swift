import FirmwareProtocol
import Foundation
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// The real loop against the simulator over a pty, in real time: what only a real line and
/// real time can show (timing over the wire, faults injected on the line, the firmware's
/// own watchdog). Command validation lives in virtual time (`ControlLoopTests`,
/// `ControlLoopFaultTests`), which also repeats most of these behaviours tick by tick.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct ControlLoopHILTests {
    @Test func walksAndRaisesToTargetsWithinTolerance() async throws {
        let h = try await LoopHarness()
        let start = h.truth
        let walk = await h.loop.run(.walk(metres: 0.4, speedMetresPerSecond: nil), timeout: 10)
        #expect(walk?.state == .done, "walk: \(String(describing: walk))")
        #expect(abs(h.truth.x - start.x - 0.4) <= 0.005, "walked \(h.truth.x - start.x) m")
        let snapshot = h.loop.snapshot()
        #expect(abs(snapshot.xMetres - (start.x + 0.4)) <= 0.005)

        #expect(await h.homeLift()?.state == .done)
        let raise = await h.loop.run(.lift(heightMetres: 0.6), timeout: 10)
        #expect(raise?.state == .done, "lift: \(String(describing: raise))")
        #expect(abs(h.truth.liftMetres - 0.6) <= 0.003, "lift at \(h.truth.liftMetres) m")
        #expect(h.loop.snapshot().stopCause == nil)
    }

    @Test func estopDuringMotionStopsWithinOneTickAndOneTransaction() async throws {
        let h = try await LoopHarness()
        let walk = h.loop.submit(.walk(metres: 3, speedMetresPerSecond: nil))
        #expect(await h.waitFor(5) { h.truth.speedMetresPerSecond > 0.3 })
        let pressed = MonotonicClock.nanoseconds()
        let estop = h.loop.submit(.estop)
        #expect(await h.waitFor(1) { !h.truth.motionPowerOn })
        let stopped = MonotonicClock.nanoseconds()
        // The firmware cut power (and with it motion) once the e-stop write landed.
        #expect(await h.waitFor(0.05) { h.truth.speedMetresPerSecond == 0 })
        let elapsedMs = Double(stopped - pressed) / 1e6
        // One 10 ms tick, one transaction (well under 1 ms here), and our 5 ms polling grain.
        #expect(elapsedMs <= 10 + 2 + 5, "e-stop took \(elapsedMs) ms from the API call to power off")
        #expect(h.loop.feedback(estop)?.state == .done)
        #expect(await h.loop.result(of: walk, timeout: 2)?.problem == .stopped(.softwareEstop))
        #expect(h.loop.snapshot().stopCause == .softwareEstop)
        // Motion is refused until the e-stop is released, and resetFault alone does not release it.
        let refused = await h.loop.run(.walk(metres: 0.1, speedMetresPerSecond: nil))
        #expect(refused?.state == .blocked)
        #expect(await h.loop.run(.resetFault)?.state == .blocked)
        let release = await h.loop.run(.releaseEstop, timeout: 5)
        #expect(release?.state == .done, "release: \(String(describing: release))")
        #expect(h.loop.snapshot().stopCause == nil)
        #expect(await h.waitFor(1) { h.truth.motionPowerOn })
    }

    /// The software e-stop does not queue behind commands: with the command queue full
    /// (64 waiting, more refused as mailboxFull) it is latched on the loop's next tick,
    /// 30 times out of 30 here (100 of 100 in virtual time, `ControlLoopTests`), and its
    /// command feedback says done (it used to say blocked/mailboxFull while the API
    /// answered 202).
    @Test func anEstopBehindAFullCommandQueueIsLatchedOnTheNextTick() async throws {
        let h = try await LoopHarness()
        var worstTicks: UInt64 = 0
        for round in 0..<30 {
            // A burst far past the queue's 64 places, posted within one tick.
            var refused = 0
            for _ in 0..<200 {
                let id = h.loop.submit(.measure(seconds: 1))
                if h.loop.feedback(id)?.problem == .mailboxFull { refused += 1 }
            }
            #expect(refused > 0, "round \(round): the queue should have been full")
            let before = h.loop.snapshot().tick
            let (id, ticket) = h.loop.estop()
            #expect(await h.loop.awaitSoftwareEstop(ticket: ticket, timeout: 1), "round \(round): e-stop not latched")
            let latchedAt = h.loop.snapshot()
            // The loop's own count of the tick that latched it: the test task may wake late
            // to look, and that must not count against the loop.
            worstTicks = max(worstTicks, latchedAt.estopServedAtTick - before)
            #expect(h.loop.feedback(id)?.state == .done)
            #expect(latchedAt.stopCause == .softwareEstop)
            // Release for the next round (queued behind what is left of the burst).
            let release = await h.loop.run(.releaseEstop, timeout: 5)
            #expect(release?.state == .done, "round \(round) release: \(String(describing: release))")
        }
        // Posted between ticks n and n+1, acted on in tick n+1; published at its end.
        #expect(worstTicks <= 2, "worst e-stop latency \(worstTicks) ticks")
    }

    /// A shutdown's halt (SIGTERM in robotd) stops motion on the next tick without the
    /// command queue, and every later motion command is refused except parking the lift.
    @Test func aShutdownHaltStopsMotionAndRefusesLaterMotionButParking() async throws {
        let h = try await LoopHarness()
        #expect(await h.homeLift()?.state == .done)
        let walk = h.loop.submit(.walk(metres: 3, speedMetresPerSecond: nil))
        #expect(await h.waitFor(5) { h.truth.speedMetresPerSecond > 0.3 })
        let before = h.loop.snapshot().tick
        let ticket = h.loop.requestHalt(inhibitMotion: true)
        #expect(await h.waitFor(1) { h.loop.snapshot().haltRequestsServed >= ticket })
        #expect(h.loop.snapshot().tick - before <= 2)
        #expect(await h.loop.result(of: walk, timeout: 2)?.state == .overridden)
        #expect(await h.waitFor(3) { h.truth.speedMetresPerSecond == 0 })
        let again = await h.loop.run(.walk(metres: 0.5, speedMetresPerSecond: nil), timeout: 2)
        #expect(again?.problem == .shuttingDown, "\(String(describing: again))")
        let raise = await h.loop.run(.lift(heightMetres: 1.0), timeout: 2)
        #expect(raise?.problem == .shuttingDown)
        let park = await h.loop.run(.lift(heightMetres: h.loop.configuration.liftParkMetres), timeout: 20)
        #expect(park?.state == .done, "parking is still allowed: \(String(describing: park))")
    }

    @Test func pullingTheLinkStopsMotionAndNamesTheLostDevice() async throws {
        let h = try await LoopHarness()
        let walk = h.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        #expect(await h.waitFor(5) { h.truth.speedMetresPerSecond > 0.3 })
        h.simulator.faults.enqueue(.linkDrop(milliseconds: 1500))
        // The firmware watchdog (500 ms) stops the robot even though nothing gets through.
        #expect(await h.waitFor(1.5) { h.truth.speedMetresPerSecond == 0 })
        let feedback = await h.loop.result(of: walk, timeout: 3)
        guard case .stopped(.lostLink(let device, let missed))? = feedback?.problem else {
            Issue.record("expected a lost-link stop, got \(String(describing: feedback))")
            return
        }
        #expect([RobotDevice.safety, .chassis, .lift].contains(device))
        #expect(missed >= 3, "a lost link is declared after several missed transactions, not one")
        guard case .lostLink? = h.loop.snapshot().stopCause else {
            Issue.record("snapshot stop cause \(String(describing: h.loop.snapshot().stopCause))")
            return
        }
        // Once the link is back, an explicit reset recovers; nothing moves by itself.
        #expect(await h.waitFor(5) { h.loop.snapshot().linkUp.safety && h.loop.snapshot().linkUp.chassis })
        let x = h.truth.x
        // The polls say the link is up a little before the safety writes have landed again
        // (on a loaded machine): a reset refused for a cause still present is tried again.
        var reset = await h.loop.run(.resetFault, timeout: 5)
        let deadline = Date().addingTimeInterval(3)
        while reset?.state == .blocked, Date() < deadline {
            try await Task.sleep(nanoseconds: 200_000_000)
            reset = await h.loop.run(.resetFault, timeout: 5)
        }
        #expect(reset?.state == .done, "reset: \(String(describing: reset))")
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(h.truth.x == x)
    }

    /// A reset answers within its 2 s timeout even when its writes cannot reach the
    /// firmware; it used to wait for them for as long as the link was down (or, for a lost
    /// write nothing posts again, for ever), holding its pulse and its drive-fault checks off.
    @Test func aResetWhoseWritesCannotLandFailsInTimeAndALaterResetWorks() async throws {
        let h = try await LoopHarness()
        h.simulator.model.inject(.driveFault(device: "chassis", code: 7))
        #expect(await h.waitFor(1) { h.loop.snapshot().stopCause == .driveFault(device: .chassis, code: 7) })
        // The link goes down just as the officer resets: the reset starts, its writes fail.
        h.simulator.faults.enqueue(.linkDrop(milliseconds: 4000))
        let started = Date()
        let reset = await h.loop.run(.resetFault, timeout: 6)
        let took = Date().timeIntervalSince(started)
        #expect(reset?.state == .failed, "reset during a link drop: \(String(describing: reset))")
        #expect(took < 3, "the reset took \(took) s to give up")
        guard case .causeStillPresent(.lostLink)? = reset?.problem else {
            Issue.record("the refusal should name the lost link: \(String(describing: reset?.problem))")
            return
        }
        #expect(h.loop.snapshot().stopCause != nil, "still stopped after a failed reset")
        // Once the link is back a new reset clears the fault (refused while it is down), and nothing moved.
        var again: CommandFeedback?
        while Date().timeIntervalSince(started) < 10 {
            again = await h.loop.run(.resetFault, timeout: 5)
            if again?.state == .done { break }
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        #expect(again?.state == .done, "reset after the link came back: \(String(describing: again))")
        #expect(Date().timeIntervalSince(started) > 3.9, "a reset went through while the link was down")
        #expect(h.loop.snapshot().stopCause == nil)
        #expect(h.truth.speedMetresPerSecond == 0)
    }

    /// Found by the 30-minute fault soak: a reset's write to a drive failed on the bus (and,
    /// like every failed write, was never sent again); every later reset then waited for
    /// that write and failed, and the robot could not be recovered.
    @Test func aDriveWriteLostDuringAResetDoesNotBlockTheNextReset() async throws {
        let h = try await LoopHarness()
        h.simulator.model.inject(.driveFault(device: "chassis", code: 9))
        #expect(await h.waitFor(1) { h.loop.snapshot().stopCause == .driveFault(device: .chassis, code: 9) })
        // Everything addressed to the chassis goes unanswered for a while: the reset's write
        // to it fails after its retry.
        h.simulator.faults.enqueue(.noReply, unit: RegisterMap.chassis.unitId, times: 12)
        _ = await h.loop.run(.resetFault, timeout: 5)  // goes through or not, depending on where the silence falls
        // The chassis answers again: a reset goes through (within a few tries while the link settles).
        var again: CommandFeedback?
        let deadline = Date().addingTimeInterval(12)
        while Date() < deadline {
            again = await h.loop.run(.resetFault, timeout: 5)
            if again?.state == .done { break }
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        #expect(again?.state == .done, "no reset went through after the link came back: \(String(describing: again))")
        #expect(h.loop.snapshot().stopCause == nil)
        // And motion works again.
        let walk = await h.loop.run(.walk(metres: 0.1, speedMetresPerSecond: nil), timeout: 10)
        #expect(walk?.state == .done, "\(String(describing: walk))")
    }

    /// The bus does not send a failed write again. A stop whose halt write was lost (both
    /// tries, while the polls around it went through) used to leave the drive running on
    /// to its old target; the loop now posts the halt again until one lands.
    @Test func aStopWhoseHaltWriteIsLostIsPostedAgain() async throws {
        let h = try await LoopHarness()
        let walk = h.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        #expect(await h.waitFor(5) { h.truth.speedMetresPerSecond > 0.3 })
        // The harness's bus tries each request twice: lose both tries of the next chassis write.
        h.simulator.faults.enqueue(.noReply, unit: RegisterMap.chassis.unitId, times: 2, requests: .writes)
        let startX = h.truth.x
        #expect(await h.loop.run(.stop, timeout: 1)?.state == .done)
        #expect(await h.loop.result(of: walk, timeout: 1)?.state == .overridden)
        #expect(await h.waitFor(3) { h.truth.speedMetresPerSecond == 0 }, "still moving at \(h.truth.speedMetresPerSecond) m/s")
        #expect(h.simulator.faults.counts()["noReply"] == 2, "the halt write was not the one lost")
        #expect(h.truth.x - startX < 1.5, "walked \(h.truth.x - startX) m after the stop: the halt was not sent again")
        // Nothing else stopped it: no watchdog expiry, no trip.
        #expect(h.loop.snapshot().stopCause == nil)
        #expect(h.truth.motionPowerOn)
    }

    /// The same for a stop of the loop's own (a deadman trip): its halt is posted again.
    @Test func aDeadmanStopWhoseHaltWriteIsLostIsPostedAgain() async throws {
        var configuration = ControlConfiguration()
        configuration.deadmanTimeoutSeconds = 0.3
        let h = try await LoopHarness(configuration: configuration)
        h.loop.armDeadman(true)
        _ = h.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        for _ in 0..<30 {
            h.loop.keepAlive()
            if h.truth.speedMetresPerSecond > 0.3 { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(h.truth.speedMetresPerSecond > 0.3)
        h.simulator.faults.enqueue(.noReply, unit: RegisterMap.chassis.unitId, times: 2, requests: .writes)
        let startX = h.truth.x
        // Keep-alives stop; the deadman trips and its halt is lost.
        #expect(await h.waitFor(1) {
            if case .deadman? = h.loop.snapshot().stopCause { return true }
            return false
        })
        #expect(await h.waitFor(3) { h.truth.speedMetresPerSecond == 0 }, "still moving at \(h.truth.speedMetresPerSecond) m/s")
        #expect(h.simulator.faults.counts()["noReply"] == 2, "the halt write was not the one lost")
        #expect(h.truth.x - startX < 1.8, "walked \(h.truth.x - startX) m after the deadman stop")
        #expect(h.truth.motionPowerOn, "the halt, not a power cut, stopped it")
    }

    /// A command whose own write is lost fails with a bus error; the next command starts
    /// afresh instead of inheriting that failure (a scan used to fail five times at once).
    @Test func aNewCommandDoesNotInheritAnEarlierCommandsLostWrite() async throws {
        let h = try await LoopHarness()
        h.simulator.faults.enqueue(.noReply, unit: RegisterMap.chassis.unitId, times: 2, requests: .writes)
        let first = await h.loop.run(.walk(metres: 0.2, speedMetresPerSecond: nil), timeout: 5)
        #expect(first?.state == .failed)
        guard case .busError(let reason)? = first?.problem else {
            Issue.record("the first walk should fail with a bus error, got \(String(describing: first))")
            return
        }
        #expect(reason.contains("chassis") && reason.contains("send the command again"), "\(reason)")
        #expect(h.simulator.faults.counts()["noReply"] == 2)
        let startX = h.truth.x
        let second = await h.loop.run(.walk(metres: 0.2, speedMetresPerSecond: nil), timeout: 10)
        #expect(second?.state == .done, "the second walk: \(String(describing: second))")
        #expect(abs(h.truth.x - startX - 0.2) <= 0.005, "walked \(h.truth.x - startX) m")
    }

    @Test func theDeadmanStopsMotionWhenKeepAlivesCease() async throws {
        var configuration = ControlConfiguration()
        configuration.deadmanTimeoutSeconds = 0.5
        let h = try await LoopHarness(configuration: configuration)
        h.loop.armDeadman(true)
        let walk = h.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        for _ in 0..<20 {
            h.loop.keepAlive()
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(h.truth.speedMetresPerSecond > 0.3, "still walking while keep-alives come")
        // Keep-alives stop: the loop decelerates the robot to a stop.
        #expect(await h.waitFor(3) { h.truth.speedMetresPerSecond == 0 })
        guard case .deadman? = h.loop.snapshot().stopCause else {
            Issue.record("stop cause \(String(describing: h.loop.snapshot().stopCause))")
            return
        }
        guard case .stopped(.deadman)? = await h.loop.result(of: walk, timeout: 1)?.problem else {
            Issue.record("walk should fail with the deadman cause")
            return
        }
    }

    @Test func aDriveFaultIsResetAndTheDriveDoesNotJump() async throws {
        let h = try await LoopHarness()
        let walk = h.loop.submit(.walk(metres: 4, speedMetresPerSecond: nil))
        #expect(await h.waitFor(5) { h.truth.speedMetresPerSecond > 0.3 })
        h.simulator.model.inject(.driveFault(device: "chassis", code: 1))
        let feedback = await h.loop.result(of: walk, timeout: 3)
        #expect(feedback?.state == .failed)
        #expect(await h.waitFor(1) { h.loop.snapshot().stopCause == .driveFault(device: .chassis, code: 1) })
        let reset = await h.loop.run(.resetFault, timeout: 5)
        #expect(reset?.state == .done, "reset: \(String(describing: reset))")
        let x = h.truth.x
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(h.truth.x == x, "the drive resumed its old walk after the reset")
        // And a new command works from where it stands.
        let again = await h.loop.run(.walk(metres: 0.2, speedMetresPerSecond: nil), timeout: 10)
        #expect(again?.state == .done)
        #expect(abs(h.truth.x - x - 0.2) <= 0.005)
    }

    @Test func measureReturnsAReadingWithItsUncertainty() async throws {
        let h = try await LoopHarness()
        let feedback = await h.loop.run(.measure(seconds: 3), timeout: 10)
        let reading = try #require(feedback?.reading, "measure: \(String(describing: feedback))")
        #expect(abs(reading.seconds - 3) < 0.2)
        // Background 0.1 μSv/h at 300 cps per μSv/h: about 90 counts in 3 s, σ ≈ 10.
        #expect(reading.counts > 40 && reading.counts < 150, "counts \(reading.counts)")
        #expect(abs(reading.doseRateMicrosievertsPerHour - 0.1) < 4 * reading.doseRateUncertaintyMicrosievertsPerHour)
        #expect(abs(reading.countRateUncertaintyPerSecond - Double(reading.counts).squareRoot() / reading.seconds) < 0.01)
    }

    /// Found by the fault soak: the detector latches an overload, and a reset that did not
    /// clear the latch left every later measurement tripping again, for ever.
    @Test func aResetClearsTheDetectorOverloadLatchSoMeasuringWorksAgain() async throws {
        let h = try await LoopHarness()
        let measuring = h.loop.submit(.measure(seconds: 2))
        try await Task.sleep(nanoseconds: 300_000_000)
        h.simulator.model.inject(.detectorOverload(true))
        let tripped = await h.loop.result(of: measuring, timeout: 5)
        #expect(tripped?.state == .failed)
        #expect(h.loop.snapshot().stopCause == .detectorOverload)
        h.simulator.model.inject(.detectorOverload(false))
        // The latch holds in the firmware until it is cleared.
        #expect(h.loop.snapshot().detectorOverload)
        let reset = await h.loop.run(.resetFault, timeout: 5)
        #expect(reset?.state == .done, "\(String(describing: reset))")
        #expect(await h.waitFor(2) { !h.loop.snapshot().detectorOverload })
        let again = await h.loop.run(.measure(seconds: 1), timeout: 10)
        #expect(again?.state == .done, "\(String(describing: again))")
        #expect(h.loop.snapshot().stopCause == nil)
    }

    /// Found by the fault soak: a firmware reboot mid-dwell reset the detector's counters,
    /// and the difference across it was recorded as a reading (a background of 0.266).
    @Test func aDetectorRestartDuringAMeasurementFailsItInsteadOfRecordingGarbage() async throws {
        let h = try await LoopHarness()
        let measuring = h.loop.submit(.measure(seconds: 3))
        try await Task.sleep(nanoseconds: 1_000_000_000)
        h.simulator.model.inject(.restart(device: "detector"))
        let feedback = await h.loop.result(of: measuring, timeout: 10)
        #expect(feedback?.state == .failed, "\(String(describing: feedback))")
        #expect(feedback?.reading == nil)
        #expect(feedback?.problem.map { "\($0)" }?.contains("restarted") == true, "\(String(describing: feedback?.problem))")
    }

    @Test func theSnapshotCarriesLifecyclesAndALiveRateWithItsUncertainty() async throws {
        let h = try await LoopHarness()
        try await Task.sleep(nanoseconds: 1_500_000_000)
        var s = h.loop.snapshot()
        #expect(s.lifecycle.safety == .active)
        #expect(s.lifecycle.chassis == .inactive, "not enabled until a motion command")
        #expect(s.lifecycle.detector == .active)
        #expect(s.countRateUncertaintyPerSecond > 0)
        #expect(abs(s.doseRateMicrosievertsPerHour - 0.1) < 5 * s.doseRateUncertaintyMicrosievertsPerHour + 0.02,
                "live dose \(s.doseRateMicrosievertsPerHour) ± \(s.doseRateUncertaintyMicrosievertsPerHour)")
        // A dead detector is an error for the detector only: motion still works.
        h.simulator.model.inject(.detectorDead(true))
        try await Task.sleep(nanoseconds: 200_000_000)
        let walk = await h.loop.run(.walk(metres: 0.2, speedMetresPerSecond: nil), timeout: 10)
        #expect(walk?.state == .done)
        s = h.loop.snapshot()
        #expect(s.lifecycle.chassis == .active)
        #expect(s.lifecycle.detector == .inactive || s.lifecycle.detector == .error)
        let measure = await h.loop.run(.measure(seconds: 1), timeout: 5)
        #expect(measure?.problem == .deviceUnavailable(device: .detector), "\(String(describing: measure))")
    }

    /// The watchdog budget (protocol review P13): a unit that stops answering holds the
    /// line for a response timeout and as long again per attempt. Polls are not retried
    /// and a waiting refresh goes out before any retry, so the firmware's watchdog (500 ms)
    /// holds: with 150 ms timeouts and one retry, retrying polls inline held the line
    /// 600 ms and let it expire. The controller sees the lost lift; the firmware never
    /// sees a late refresh.
    @Test func oneSilentUnitCannotStarveTheFirmwareWatchdog() async throws {
        let h = try await LoopHarness(responseTimeoutMilliseconds: 150)
        h.simulator.faults.enqueue(.noReply, unit: RegisterMap.lift.unitId, times: 100_000)
        var expired = false
        for _ in 0..<60 {
            try await Task.sleep(nanoseconds: 50_000_000)
            let registers = try h.simulator.model.read(unit: 1, table: .input, start: 16, count: 6).get()
            if SafetyStatus.Flags(rawValue: registers[0]).contains(.watchdogExpired) { expired = true }
        }
        h.simulator.faults.clear()
        #expect(!expired, "the firmware watchdog expired while only the lift was silent")
        #expect(h.loop.snapshot().stopCause == .lostLink(device: .lift, missedPolls: 5), "\(String(describing: h.loop.snapshot().stopCause))")
    }
}
