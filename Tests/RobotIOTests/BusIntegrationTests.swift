import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// The real bus layer (libmodbus on its own thread) against the simulator's libmodbus
/// server on a pseudo-terminal. No socat, no mocks.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct BusIntegrationTests {
    @Test func readsEveryUnitsIdentityAndChecksTheProtocolVersion() async throws {
        let h = try SimulatorHarness()
        for device in RegisterMap.devices {
            let identity = try await h.bus.identify(device)
            #expect(identity.deviceType == device.deviceType)
            #expect(identity.protocolVersion == .current)
        }
    }

    @Test func writesACommandBlockAndReadsItBack() async throws {
        let h = try SimulatorHarness()
        let command = LiftCommand(controlword: .shutdown, mode: .profilePosition, targetHeightMillimetres: 1750,
                                  speedMillimetresPerSecond: 150, accelerationMillimetresPerSecond2: 300)
        try await h.bus.write(command, unit: RegisterMap.lift.unitId)
        let back = try await h.bus.read(LiftCommand.self, unit: RegisterMap.lift.unitId)
        #expect(back == command)
        // And the firmware acted on the controlword: shutdown takes it to ready-to-switch-on
        // only with motion power, which needs a watchdog refresh first, so it stays disabled.
        let status = try await h.bus.read(LiftStatus.self, unit: RegisterMap.lift.unitId)
        #expect(status.driveState == .switchOnDisabled)
    }

    @Test func anExceptionReplyBecomesATypedError() async throws {
        let h = try SimulatorHarness()
        h.faults.enqueue(.exception(code: 6), unit: 4)
        let error = await h.expectBusError { _ = try await h.bus.read(DetectorStatus.self, unit: 4) }
        #expect(error?.kind == .exception(code: 6))
        #expect(error?.device == "detector")
        #expect(error?.description.contains("device busy") == true)
        // The firmware's own refusal: a position move on a lift that was never homed.
        let h2 = try SimulatorHarness()
        try await enableDrives(h2.bus)
        let move = LiftCommand(controlword: Controlword.enableOperationCommand.union(.newSetpoint), mode: .profilePosition,
                               targetHeightMillimetres: 2000)
        let refused = await h2.expectBusError { try await h2.bus.write(move, unit: 3) }
        #expect(refused?.kind == .exception(code: ModbusException.serverDeviceFailure.rawValue))
        #expect(refused?.operation == "write holding registers 16-20")
    }

    @Test func aUnitThatNeverAnswersTimesOutAndTheBusCarriesOn() async throws {
        let h = try SimulatorHarness(responseTimeoutMilliseconds: 50)
        h.faults.enqueue(.noReply, unit: 2)
        let error = await h.expectBusError { _ = try await h.bus.read(ChassisStatus.self, unit: 2) }
        #expect(error?.kind == .timeout(milliseconds: 50))
        #expect(error?.description.contains("chassis (unit 2), read input registers 16-26: no reply within 50 ms") == true)
        let status = try await h.bus.read(ChassisStatus.self, unit: 2)
        #expect(status.faultCode == 0)
        let stats = try #require(h.bus.statisticsSnapshot().first { $0.unitId == 2 })
        #expect(stats.timeouts == 1)
        #expect(stats.transactions == 2)
    }

    @Test func aLateReplyIsFlushedAndNeverTakenAsTheNextAnswer() async throws {
        let h = try SimulatorHarness(responseTimeoutMilliseconds: 50)
        // The reply to this read arrives 30 ms after the master gave up on it.
        h.faults.enqueue(.lateReply(milliseconds: 80), unit: 3)
        let error = await h.expectBusError { _ = try await h.bus.read(LiftCommand.self, unit: 3) }
        #expect(error?.kind == .timeout(milliseconds: 50))
        // If the stale read reply were still in the line, the write would take it as its
        // confirmation and fail, and the read would return the old block.
        let command = LiftCommand(controlword: [], mode: .profilePosition, targetHeightMillimetres: 2222)
        try await h.bus.write(command, unit: 3)
        #expect(try await h.bus.read(LiftCommand.self, unit: 3) == command)
        let stats = try #require(h.bus.statisticsSnapshot().first { $0.unitId == 3 })
        #expect(stats.malformedReplies == 0)
    }

    @Test func aCorruptedCRCIsSeenAndRetried() async throws {
        let noRetry = try SimulatorHarness()
        noRetry.faults.enqueue(.crcError, unit: 1)
        let error = await noRetry.expectBusError { _ = try await noRetry.bus.read(SafetyStatus.self, unit: 1) }
        #expect(error?.kind == .crcMismatch)

        let withRetry = try SimulatorHarness(maxRetries: 2)
        withRetry.faults.enqueue(.crcError, unit: 1)
        _ = try await withRetry.bus.read(SafetyStatus.self, unit: 1)
        let stats = try #require(withRetry.bus.statisticsSnapshot().first { $0.unitId == 1 })
        #expect(stats.crcErrors == 1)
        #expect(stats.retries == 1)
    }

    @Test func garbageOnTheLineIsAnErrorNotAWedge() async throws {
        let h = try SimulatorHarness(responseTimeoutMilliseconds: 50)
        h.faults.enqueue(.junkBytes(count: 9), unit: 4)
        let error = await h.expectBusError { _ = try await h.bus.read(DetectorStatus.self, unit: 4) }
        #expect(error != nil)
        #expect(error?.isTransient == true, "garbage must be a retryable error, got \(String(describing: error))")
        h.faults.enqueue(.splitFrame(gapMilliseconds: 30), unit: 4)
        let split = await h.expectBusError { _ = try await h.bus.read(DetectorStatus.self, unit: 4) }
        #expect(split != nil)
        for _ in 0..<5 {
            _ = try await h.bus.read(DetectorStatus.self, unit: 4)
        }
    }

    @Test func badRequestsAreRefusedBeforeTheWire() async throws {
        let h = try SimulatorHarness()
        let wrongUnit = await h.expectBusError { _ = try await h.bus.perform(unit: 9, .readInput(address: 16, count: 4)) }
        #expect(wrongUnit?.kind == .unknownUnit(known: [1, 2, 3, 4]))
        #expect(wrongUnit?.description == "unit 9 (unit 9), read input registers 16-19: no device with this unit ID in the register map; known units are 1, 2, 3, 4")

        let unknownRegister = await h.expectBusError { _ = try await h.bus.perform(unit: 3, .readInput(address: 40, count: 2)) }
        #expect(unknownRegister?.kind == .unknownRegister(allowed: "input identity 0-3, boot 4-6, status 16-20"))

        let outOfRange = await h.expectBusError { _ = try await h.bus.perform(unit: 3, .writeSingle(address: 18, value: 5000)) }
        guard case .invalidValue(let protocolError)? = outOfRange?.kind else {
            Issue.record("expected invalidValue, got \(String(describing: outOfRange))")
            return
        }
        #expect(protocolError.description == "lift.command.targetHeight = 5.000 m is out of range; allowed 0.300 m to 2.800 m")
        // None of these reached the simulator.
        #expect(h.simulator.rtu.counters.requests == 0)
    }

    @Test func pollsKeepTheLatestStateWithTimestamps() async throws {
        let h = try SimulatorHarness()
        h.bus.pollStatusBlocks(periodMilliseconds: 10)
        let fresh = await eventually(within: 3) {
            RegisterMap.devices.allSatisfy { d in
                (h.bus.latest(unit: d.unitId, block: d.block("status")!)?.sequence ?? 0) >= 5
            }
        }
        #expect(fresh)
        let detector = try #require(h.bus.latest(unit: 4, block: DetectorStatus.spec))
        let status = try detector.decode(DetectorStatus.self)
        #expect(status.flags.contains(.dataValid))
        #expect(detector.consecutiveFailures == 0)
        #expect(detector.sampledAtNanoseconds <= MonotonicClock.nanoseconds())
    }

    @Test func failedPollsCountUpForTheLostLinkSupervisor() async throws {
        let h = try SimulatorHarness(responseTimeoutMilliseconds: 20)
        h.bus.addPoll(unit: 2, block: ChassisStatus.spec, periodMilliseconds: 10)
        #expect(await eventually(within: 2) { (h.bus.latest(unit: 2, block: ChassisStatus.spec)?.sequence ?? 0) > 0 })
        h.faults.enqueue(.linkDrop(milliseconds: 400))
        #expect(await eventually(within: 2) { (h.bus.latest(unit: 2, block: ChassisStatus.spec)?.consecutiveFailures ?? 0) >= 3 })
        let failing = try #require(h.bus.latest(unit: 2, block: ChassisStatus.spec))
        #expect(failing.lastError?.kind == .timeout(milliseconds: 20))
        #expect(!failing.registers.isEmpty, "the last good copy is kept")
        // The link comes back and the counter resets.
        #expect(await eventually(within: 3) { h.bus.latest(unit: 2, block: ChassisStatus.spec)?.consecutiveFailures == 0 })
    }

    @Test func safetyWritesOvertakeQueuedBackgroundReads() async throws {
        let h = try SimulatorHarness()
        let order = Recorder<String>()
        let done = DispatchSemaphore(value: 0)
        for i in 0..<40 {
            h.bus.submit(unit: 4, .readInput(address: 16, count: 8), priority: .background) { _ in
                order.append("read\(i)")
                if i == 39 { done.signal() }
            }
        }
        h.bus.submit(unit: 1, .writeSingle(address: SafetyCommand.outputsAddress, value: 0), priority: .safety) { result in
            if case .success = result { order.append("safety") } else { order.append("safety-failed") }
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { done.wait(); c.resume() }
        }
        let position = try #require(order.values.firstIndex(of: "safety"))
        #expect(position <= 2, "safety write ran at position \(position) of \(order.values.count)")
    }

    @Test func theBusReconnectsWhenThePortComesBack() async throws {
        let link = "/tmp/robot-sim-test-\(getpid())/bus-replug"
        var first: Simulator? = try Simulator(model: FirmwareModel(), options: Simulator.Options(linkPath: link))
        try first?.start()
        let bus = ModbusBus(configuration: BusConfiguration(
            endpoint: .rtu(.path(link), responseTimeoutMilliseconds: 30), maxRetries: 0, reconnectIntervalMilliseconds: 50))
        bus.start()
        defer { bus.stop() }
        _ = try await bus.read(IdentityBlock.self, unit: 1)
        // Unplug: the simulator and its pty go away, and the bus sees the link drop.
        first?.stop()
        first = nil
        let down = await eventually(within: 3) {
            do {
                _ = try await bus.read(IdentityBlock.self, unit: 1)
                return false
            } catch {
                return !bus.isLinkUp
            }
        }
        #expect(down, "the bus must notice the port is gone")
        // Plug back in: a new pty behind the same name.
        let second = try Simulator(model: FirmwareModel(), options: Simulator.Options(linkPath: link))
        try second.start()
        defer { second.stop() }
        let back = await eventually(within: 5) { (try? await bus.read(IdentityBlock.self, unit: 1)) != nil }
        #expect(back)
        #expect(bus.isLinkUp)
    }

    @Test func modbusTCPThroughAGatewayWorksTheSame() async throws {
        let simulator = try Simulator(model: FirmwareModel(), options: Simulator.Options(tcpPort: 0))
        try simulator.start()
        defer { simulator.stop() }
        let port = try #require(simulator.tcp?.port)
        let bus = ModbusBus(configuration: BusConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port)))
        bus.start()
        defer { bus.stop() }
        for device in RegisterMap.devices {
            _ = try await bus.identify(device)
        }
        let command = LiftCommand(controlword: [], mode: .profilePosition, targetHeightMillimetres: 1234)
        try await bus.write(command, unit: 3)
        #expect(try await bus.read(LiftCommand.self, unit: 3) == command)
        // A gateway answers for an absent unit with exception 0x0B when the map allows the request.
        let status = try await bus.read(LiftStatus.self, unit: 3)
        #expect(status.driveState == .switchOnDisabled)
    }
}

/// Refreshes the watchdog, releases the power-up interlock with a reset edge (protocol 1.1,
/// W7.5), and steps both drives to operation enabled.
func enableDrives(_ bus: ModbusBus) async throws {
    try await bus.write(SafetyCommand(watchdogToken: 1, watchdogTimeoutMilliseconds: 5000), unit: 1)
    try await bus.write(SafetyCommand(watchdogToken: 2, watchdogTimeoutMilliseconds: 5000, outputs: .estopReset), unit: 1)
    try await bus.write(SafetyCommand(watchdogToken: 3, watchdogTimeoutMilliseconds: 5000), unit: 1)
    for unit: UInt8 in [2, 3] {
        for word in [Controlword.shutdown, .switchOnCommand, .enableOperationCommand] {
            _ = try await bus.perform(unit: unit, .writeSingle(address: 16, value: word.rawValue))
        }
    }
}
