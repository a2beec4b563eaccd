import FirmwareProtocol
import Foundation
import RobotSimulator
import RobotTesting
import Testing

/// The high items of the protocol review, each as the rule protocol 1.1 wrote down
/// (`firmware-protocol/README.md`), checked on the simulator's firmware model in virtual
/// time. Every test here failed on the pre-1.1 simulator; the `Deviation` that brings the
/// old behaviour back makes it fail again (`deviationBringsTheFailureBack`). The
/// conformance kit (`hil/conformance/`) checks the same rules over the wire.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ProtocolRuleTests {
    /// A powered robot: one refresh and one reset edge after power-up (W7.5).
    final class Firmware {
        let model: FirmwareModel
        var token: UInt16 = 0

        init(_ deviations: Set<Deviation> = []) {
            var settings = RobotSettings()
            settings.deviations = deviations
            model = FirmwareModel(settings: settings, startX: 5, startY: 2)
        }

        @discardableResult
        func safety(_ outputs: SafetyCommand.Outputs = [], refresh: Bool = true) -> ModbusException? {
            if refresh { token &+= 1 }
            return model.write(unit: 1, start: 16, values: [token, 500, outputs.rawValue])
        }

        func powerOn() {
            safety()
            safety(.estopReset)
            safety()
        }

        /// Advances time, refreshing the watchdog every 100 ms as the controller does.
        func run(seconds: Double) {
            var left = seconds
            while left > 0 {
                model.advance(seconds: min(0.1, left))
                safety()
                left -= 0.1
            }
        }

        var safetyFlags: SafetyStatus.Flags { (try? SafetyStatus(registers: read(1, 16, 6))).map(\.flags) ?? [] }
        var chassis: ChassisStatus? { try? ChassisStatus(registers: read(2, 16, 11)) }
        var lift: LiftStatus? { try? LiftStatus(registers: read(3, 16, 5)) }
        var chassisHolding: [UInt16] { read(2, 16, 9, table: .holding) }

        func read(_ unit: UInt8, _ start: Int, _ count: Int, table: RegisterTable = .input) -> [UInt16] {
            (try? model.read(unit: unit, table: table, start: start, count: count).get()) ?? []
        }

        func chassis(_ word: Controlword, mode: ChassisMode = .idle, a: Int32 = 0, speed: UInt16 = 400) -> ModbusException? {
            let registers = (try? ChassisCommand(controlword: word, mode: mode, targetA: a, speedMillimetresPerSecond: speed).registers()) ?? []
            return model.write(unit: 2, start: 16, values: registers)
        }

        func lift(_ word: Controlword, mode: LiftMode = .idle, heightMillimetres: UInt16 = 1000) -> ModbusException? {
            let registers = (try? LiftCommand(controlword: word, mode: mode, targetHeightMillimetres: heightMillimetres).registers()) ?? []
            return model.write(unit: 3, start: 16, values: registers)
        }

        func enable(chassis: Bool = true) {
            for word: Controlword in [.shutdown, .switchOnCommand, .enableOperationCommand] {
                if chassis { _ = self.chassis(word) } else { _ = lift(word) }
            }
        }
    }

    // P2 (D5.3, F3.6): enable and a set-point in one write is refused, and changes nothing.
    @Test func enableWithASetpointInOneWriteIsRefusedAndChangesNothing() {
        let f = Firmware()
        f.powerOn()
        _ = f.chassis(.shutdown)
        _ = f.chassis(.switchOnCommand)
        let held = f.chassisHolding
        let x = f.model.truth().x
        #expect(f.chassis(Controlword.enableOperationCommand.union(.newSetpoint), mode: .moveRelative, a: 300) == .serverDeviceFailure)
        #expect(f.chassisHolding == held, "a refused write stores nothing")
        #expect(f.model.truth().chassisState == .switchedOn, "nor makes its transition")
        f.run(seconds: 1)
        #expect(abs(f.model.truth().x - x) < 1e-6, "and nothing moves")
        // Enabling afterwards never starts the stored set-point (D5.4).
        _ = f.chassis(.enableOperationCommand, mode: .moveRelative, a: 300)
        f.run(seconds: 1)
        #expect(f.model.truth().chassisState == .operationEnabled)
        #expect(abs(f.model.truth().x - x) < 1e-6)
    }

    // P3 (D5.7): halt decelerates, refuses set-points while set, and never resumes.
    @Test func haltDeceleratesAndReleasingItNeverResumes() {
        let f = Firmware()
        f.powerOn()
        f.enable()
        #expect(f.chassis(Controlword.enableOperationCommand.union(.newSetpoint), mode: .moveRelative, a: 3000) == nil)
        f.run(seconds: 1.5)
        let cruising = f.model.truth().speedMetresPerSecond
        #expect(cruising > 0.35)
        #expect(f.chassis(Controlword.enableOperationCommand.union(.halt)) == nil)
        f.run(seconds: 0.2)
        let slowing = f.model.truth().speedMetresPerSecond
        #expect(slowing > 0.05 && slowing < cruising, "a ramp, not a jump: \(slowing) m/s")
        #expect(f.chassis(Controlword.enableOperationCommand.union([.halt, .newSetpoint]), mode: .moveRelative, a: 500) == .serverDeviceFailure)
        f.run(seconds: 1)
        #expect(f.model.truth().speedMetresPerSecond == 0)
        #expect(f.chassis?.flags.contains(.targetReached) == true, "target reached at standstill")
        let stoppedAt = f.model.truth().x
        _ = f.chassis(.enableOperationCommand)
        f.run(seconds: 1)
        #expect(abs(f.model.truth().x - stoppedAt) < 1e-6, "releasing halt never resumes the old target")
    }

    // P4 (L6.1, L6.2, L6.3): legal set-points never reach a switch; a switch outside homing is fault 3.
    @Test func limitSwitchesLieOutsideTheSetpointRangeAndTripFault3() {
        let f = Firmware()
        f.powerOn()
        f.enable(chassis: false)
        #expect(f.lift(Controlword.enableOperationCommand.union(.newSetpoint), mode: .profilePosition, heightMillimetres: 1500) == .serverDeviceFailure,
                "not homed yet")
        #expect(f.lift(Controlword.enableOperationCommand.union(.newSetpoint), mode: .homing) == nil)
        f.run(seconds: 20)
        #expect(f.lift?.flags.contains(.homed) == true)
        #expect(f.lift?.heightMillimetres == 300)
        #expect(f.lift?.flags.contains(.lowerLimit) == false, "homing backs off the switch")
        _ = f.lift(.enableOperationCommand)
        #expect(f.lift(Controlword.enableOperationCommand.union(.newSetpoint), mode: .profilePosition, heightMillimetres: 2800) == nil)
        f.run(seconds: 16)
        #expect(f.lift?.heightMillimetres == 2800)
        #expect(f.lift?.flags.contains(.upperLimit) == false)
        #expect(f.model.truth().liftState == .operationEnabled)
        f.model.inject(.limitSwitch(upper: true, closed: true))
        #expect(f.lift?.faultCode == 3)
        #expect(f.model.truth().liftState == .fault)
    }

    // P5 (W7.4, W7.5): no reset while a cause remains; no power at power-up without a reset.
    @Test func resetNeedsEveryCauseGoneAndPowerUpNeedsAReset() {
        let f = Firmware()
        #expect(f.safetyFlags.contains([.estopLatched, .bootInterlock]))
        f.safety()
        f.model.advance(seconds: 0.05)
        #expect(!f.safetyFlags.contains(.motionPowerOn), "a refresh alone never powers the drives")
        f.safety(.estopReset)
        #expect(f.safetyFlags.contains(.motionPowerOn))
        // Let the watchdog expire, then try a reset with no refresh in time.
        f.model.advance(seconds: 0.6)
        #expect(f.safetyFlags.contains([.watchdogExpired, .estopLatched]))
        f.safety([], refresh: false)
        f.safety(.estopReset, refresh: false)
        #expect(f.safetyFlags.contains([.watchdogExpired, .estopLatched]), "the edge does nothing while the watchdog is expired")
        f.safety([], refresh: false)
        f.safety(.estopReset)
        #expect(!f.safetyFlags.contains(.estopLatched) && !f.safetyFlags.contains(.watchdogExpired), "a refresh in the same write counts")
    }

    // P6 (B4.1, R8.1): every holding register boots to the map's `bootDefault`; the detector's HV is on.
    @Test func holdingRegistersBootToTheMapsDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("firmware-protocol/register-map.json"))
        let map = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let devices = try #require(map["devices"] as? [[String: Any]])
        let f = Firmware()
        f.model.inject(.reboot)
        f.model.advance(seconds: 0.5)
        var checked = 0
        for device in devices {
            let unit = UInt8(try #require(device["unitId"] as? Int))
            for block in try #require(device["blocks"] as? [[String: Any]]) where block["table"] as? String == "holding" {
                let name = try #require(block["name"] as? String)
                let spec = try #require(RegisterMap.device(unitId: unit)?.block(name))
                let registers = f.read(unit, Int(spec.start), spec.count, table: .holding)
                let decoded = try spec.decodeFields(registers)
                for field in try #require(block["fields"] as? [[String: Any]]) {
                    let fieldName = try #require(field["name"] as? String)
                    let expected = try #require(field["bootDefault"] as? Int, "\(fieldName) has a bootDefault")
                    let value = decoded.first { $0.field.name == fieldName }?.value
                    #expect(value == .integer(Int64(expected)), "\(name).\(fieldName)")
                    checked += 1
                }
            }
        }
        #expect(checked >= 20)
        #expect(f.read(4, 16, 1, table: .holding) == [DetectorCommand.Control.highVoltageOn.rawValue])
    }

    // P7 (F3.6, D5.13): an undefined mode is refused and nothing is stored.
    @Test func anUndefinedLiftModeIsRefusedAndNotStored() {
        let f = Firmware()
        let before = f.read(3, 16, 5, table: .holding)
        #expect(f.model.write(unit: 3, start: 17, values: [3]) == .illegalDataValue)
        #expect(f.read(3, 16, 5, table: .holding) == before)
        #expect(f.model.write(unit: 3, start: 16, values: [Controlword.disableVoltage.rawValue]) == nil, "later controlwords still work")
    }

    // P1 (Q9.1-Q9.4, B4.3, F3.9): the pose is set at standstill and lost at a restart, which
    // the boot count and a booting phase show.
    @Test func thePoseIsSetAtStandstillAndLostAtARestart() throws {
        let f = Firmware()
        f.powerOn()
        #expect(f.chassis?.flags.contains(.poseSet) == true, "the scenario's start is a dock")
        let pose = try ChassisPose(xMetres: 100, yMetres: -20, headingDegrees: 90).registers()
        #expect(f.model.write(unit: 2, start: 32, values: Array(pose[0..<4])) == .illegalDataValue, "the whole block or nothing")
        #expect(f.model.write(unit: 2, start: 32, values: pose) == nil)
        #expect(f.chassis?.positionXMillimetres == 100_000 && f.chassis?.positionYMillimetres == -20_000 && f.chassis?.headingCentidegrees == 9000)
        f.enable()
        #expect(f.chassis(Controlword.enableOperationCommand.union(.newSetpoint), mode: .moveRelative, a: 1000) == nil)
        f.run(seconds: 1)
        #expect(f.model.write(unit: 2, start: 32, values: pose) == .serverDeviceFailure, "not while moving")
        f.run(seconds: 3)
        let y = try #require(f.chassis?.positionYMillimetres)
        #expect(abs(Int(y) - (-19_000)) <= 10, "heading 90°: the move went along +y in the given frame, at \(y) mm")
        let boots = f.read(2, 4, 3)[0]
        f.model.inject(.restart(device: "chassis"))
        #expect(f.model.read(unit: 2, table: .input, start: 16, count: 11) == .failure(.serverDeviceBusy), "booting")
        f.model.advance(seconds: 0.5)
        #expect(f.chassis?.flags.contains(.poseSet) == false)
        #expect(f.chassis?.positionXMillimetres == 0 && f.chassis?.positionYMillimetres == 0)
        #expect(f.read(2, 4, 3)[0] == boots &+ 1)
    }

    // Each deviation brings back the old behaviour that one of the tests above rules out.
    @Test func deviationBringsTheFailureBack() {
        let f = Firmware([.enableWithSetpoint])
        f.powerOn()
        _ = f.chassis(.shutdown)
        _ = f.chassis(.switchOnCommand)
        #expect(f.chassis(Controlword.enableOperationCommand.union(.newSetpoint), mode: .moveRelative, a: 300) == nil)
        f.run(seconds: 1)
        #expect(f.model.truth().x > 5.1, "enable plus set-point moves again")

        let g = Firmware([.resetWhileExpired])
        g.powerOn()
        g.model.advance(seconds: 0.6)
        g.safety([], refresh: false)
        g.safety(.estopReset, refresh: false)
        #expect(!g.safetyFlags.contains(.estopLatched) && g.safetyFlags.contains(.watchdogExpired))

        let h = Firmware([.noBootInterlock])
        h.safety()
        #expect(h.safetyFlags.contains(.motionPowerOn), "the first refresh powers the drives")
    }

    /// The conformance kit's table of deviations (`hil/conformance/conformance.py`) names
    /// the same flags and rules as the simulator's `Deviation`.
    @Test func theKitAndTheSimulatorAgreeOnEveryDeviation() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let kit = try String(contentsOf: root.appendingPathComponent("hil/conformance/conformance.py"), encoding: .utf8)
        let table = try #require(kit.range(of: "DEVIATIONS = {").map { kit[$0.upperBound...] }?.split(separator: "}").first)
        var pairs: [String: String] = [:]
        for line in table.split(separator: "\n") {
            let parts = line.split(separator: "\"").map(String.init)
            if parts.count >= 4 { pairs[parts[1]] = parts[3] }
        }
        #expect(pairs == Dictionary(uniqueKeysWithValues: Deviation.allCases.map { ($0.rawValue, $0.rule) }))
    }
}
