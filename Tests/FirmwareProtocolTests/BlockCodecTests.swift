import FirmwareProtocol
import RobotTesting
import Testing

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct BlockCodecTests {
    @Test func chassisStatusDecodesSignedAndThirtyTwoBitFields() throws {
        // Registers of the chassis.status vector: x = -12345 mm, y = 6789012 mm, heading -90.00°.
        let registers: [UInt16] = [0x1427, 0x0011, 0xFFFF, 0xCFC7, 0x0067, 0x9794, 0xDCD8, 0xFF06, 0xEE6B, 0x2800, 0]
        let status = try ChassisStatus(registers: registers)
        #expect(status.positionXMillimetres == -12345)
        #expect(status.positionYMillimetres == 6_789_012)
        #expect(status.headingCentidegrees == -9000)
        #expect(status.velocityMillimetresPerSecond == -250)
        #expect(status.odometerMillimetres == 4_000_000_000)
        #expect(status.driveState == .operationEnabled)
        #expect(status.flags == [.targetReached, .setpointAcknowledged])
        #expect(status.positionXMetres == -12.345)
        #expect(try status.registers() == registers)
    }

    @Test func chassisHeadingOutsideHalfTurnIsRefused() {
        var registers = [UInt16](repeating: 0, count: ChassisStatus.spec.count)
        registers[6] = UInt16(bitPattern: 18001)
        #expect(throws: ProtocolError.self) { try ChassisStatus(registers: registers) }
    }

    @Test func liftTargetOutOfRangeSaysWhatIsAllowed() {
        let command = LiftCommand(controlword: .enableOperationCommand, mode: .profilePosition, targetHeightMillimetres: 3200)
        do {
            _ = try command.registers()
            Issue.record("a 3.2 m target must be refused")
        } catch {
            #expect(error.description == "lift.command.targetHeight = 3.200 m is out of range; allowed 0.300 m to 2.800 m")
            guard case let .valueOutOfRange(_, _, field, raw, allowed, _, _) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(field == "targetHeight")
            #expect(raw == 3200)
            #expect(allowed == 300...2800)
        }
    }

    @Test func wrongLengthIsRefused() {
        #expect(throws: ProtocolError.wrongLength(device: "lift", block: "status", expected: 5, got: 4)) {
            try LiftStatus(registers: [0, 0, 0, 0])
        }
    }

    @Test func unknownModeIsRefused() {
        var registers = [UInt16](repeating: 0, count: LiftCommand.spec.count)
        registers[1] = 3
        #expect(throws: ProtocolError.self) { try LiftCommand(registers: registers) }
        var chassis = [UInt16](repeating: 0, count: ChassisCommand.spec.count)
        chassis[1] = 9
        #expect(throws: ProtocolError.self) { try ChassisCommand(registers: chassis) }
    }

    @Test func detectorCountsAreWrapSafe() {
        let before = DetectorStatus(flags: [.dataValid], doseRateNanosievertsPerHour: 100, counts: 4_294_967_000,
                                    timeBaseMilliseconds: 4_294_967_000, faultCode: 0)
        let after = DetectorStatus(flags: [.dataValid], doseRateNanosievertsPerHour: 100, counts: 704,
                                   timeBaseMilliseconds: 704, faultCode: 0)
        let delta = after.countsSince(before)
        #expect(delta.counts == 1000)
        #expect(delta.milliseconds == 1000)
    }

    @Test func detectorInfoRoundTripsAndRefusesLongSerials() throws {
        let info = DetectorInfo(serialNumber: "GD-2026-00417", calibrationFactorMillionths: 1_023_000,
                                calibrationDate: 20260315, calibrationExpiry: 20270315,
                                sensitivityDeciCountsPerSecondPerMicrosievertPerHour: 3000,
                                timeConstantMilliseconds: 2000, rangeMaxNanosievertsPerHour: 1_000_000_000)
        let decoded = try DetectorInfo(registers: try info.registers())
        #expect(decoded == info)
        #expect(decoded.calibrationFactor == 1.023)
        #expect(decoded.sensitivityCountsPerSecondPerMicrosievertPerHour == 300)
        var long = info
        long.serialNumber = "THIS-SERIAL-IS-TOO-LONG"
        #expect(throws: ProtocolError.self) { try long.registers() }
    }

    @Test func safetyCommandRefusesAWatchdogOutsideItsRange() {
        #expect(throws: ProtocolError.self) { try SafetyCommand(watchdogToken: 1, watchdogTimeoutMilliseconds: 20).registers() }
        #expect(throws: Never.self) { try SafetyCommand(watchdogToken: 1, watchdogTimeoutMilliseconds: 500).registers() }
    }

    @Test func identityCheckNamesTheProblem() throws {
        let lift = IdentityBlock(protocolVersion: ProtocolVersion(major: 1, minor: 3), deviceType: 3, firmwareVersion: 0x0102)
        try lift.check(against: RegisterMap.lift)
        #expect(throws: ProtocolError.wrongDeviceType(unitId: 2, expected: 2, found: 3)) {
            try lift.check(against: RegisterMap.chassis)
        }
        let old = IdentityBlock(protocolVersion: ProtocolVersion(major: 2, minor: 0), deviceType: 3, firmwareVersion: 0)
        #expect(throws: ProtocolError.self) { try old.check(against: RegisterMap.lift) }
        #expect(lift.firmwareVersionText == "1.2")
    }

    @Test func mapDrivenFormattingUsesUnits() throws {
        let block = RegisterMap.lift.block("status")!
        let fields = try block.decodeFields([0x0427, 0x0009, 1500, UInt16(bitPattern: -120), 0])
        let text = fields.map { $0.field.formatted($0.value) }
        #expect(text[0] == "0x0427")
        #expect(text[1] == "0x0009 [homed, targetReached]")
        #expect(text[2] == "1.500 m")
        #expect(text[3] == "-0.120 m/s")
    }

    @Test func mapChecksWritesAgainstFieldRanges() {
        let lift = RegisterMap.lift
        #expect(lift.check(table: .holding, start: 18, count: 1, values: [2500]) == nil)
        guard case .valueOutOfRange? = lift.check(table: .holding, start: 18, count: 1, values: [5000]) else {
            Issue.record("5 m must be out of range")
            return
        }
        guard case .unknownRegister? = lift.check(table: .input, start: 40, count: 2, values: nil) else {
            Issue.record("input 40 is not in the lift's map")
            return
        }
        #expect(lift.check(table: .input, start: 16, count: 126, values: nil) == .badCount(126))
    }
}

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct CiA402Tests {
    @Test(arguments: DriveState.allCases)
    func statusBitsDecodeBackToTheirState(_ state: DriveState) {
        #expect(DriveState(statusword: state.statusBits) == state)
        // Bits outside the state mask (voltage enabled, target reached) do not change the state.
        #expect(DriveState(statusword: state.statusBits | 0x1410) == state || state == .notReadyToSwitchOn)
    }

    @Test func enableSequenceTakesOneStepAtATime() {
        #expect(Controlword.stepTowardsEnabled(from: .switchOnDisabled) == .shutdown)
        #expect(Controlword.stepTowardsEnabled(from: .readyToSwitchOn) == .switchOnCommand)
        #expect(Controlword.stepTowardsEnabled(from: .switchedOn) == .enableOperationCommand)
        #expect(Controlword.stepTowardsEnabled(from: .operationEnabled) == nil)
        // A fault needs an explicit reset edge, never an automatic re-enable.
        #expect(Controlword.stepTowardsEnabled(from: .fault) == nil)
        #expect(Controlword.shutdown.rawValue == 0x0006)
        #expect(Controlword.switchOnCommand.rawValue == 0x0007)
        #expect(Controlword.enableOperationCommand.rawValue == 0x000F)
    }
}
