import Foundation
import RobotSimulator
import RobotTesting
import Testing

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ScenarioFileTests {
    @Test func theShippedScenariosLoad() throws {
        let clean = try Rig.scenario("hil/scenarios/clean-20ft.yaml")
        #expect(clean.field.containers.count == 1)
        #expect(clean.field.containers[0].type == .twentyFoot)
        #expect(clean.field.containers[0].sources.isEmpty)

        let hot = try Rig.scenario("hil/scenarios/cs137-40ft.yaml")
        #expect(hot.field.containers[0].sources == [PointSource(nuclide: .cs137, activityMBq: 20, along: 7.5, across: 0.4, height: 1.2)])

        let weak = try Rig.scenario("hil/scenarios/weak-40ft.yaml")
        #expect(weak.field.containers[0].sources.first?.activityMBq == 60)

        let faulty = try Rig.scenario("hil/scenarios/faulty-bus-40ft.yaml")
        #expect(faulty.lineTiming.enabled)
        #expect(faulty.busFaultRates.crcError == 0.02)
        #expect(faulty.faults.count == 7)
        #expect(faulty.faults.first == Scenario.TimedFault(atSeconds: 20, kind: .bus(.linkDrop(milliseconds: 3000), unit: nil, times: 1)))
    }

    /// The weak scenario really is "just below the limit": significant, yet under +0.25.
    @Test func theWeakSourceStaysBelowTheLimitAtTheStandOff() throws {
        let weak = try Rig.scenario("hil/scenarios/weak-40ft.yaml")
        var highest = 0.0
        for along in stride(from: 0.25, to: 12.2, by: 0.4877) {
            for height in [0.5, 1.0, 1.5, 2.0, 2.5] {
                // Probe 0.10 m outside the left wall (y = 0.1) and the right wall (y = −2.538).
                for y in [0.1, -2.538] {
                    let net = weak.field.doseRate(x: along, y: y, z: height, atSeconds: 0) - weak.field.background(atSeconds: 0)
                    highest = max(highest, net)
                }
            }
        }
        #expect(highest > 0.10 && highest < 0.22, "highest net \(highest) μSv/h")
    }

    func error(_ yaml: String) -> ConfigurationFileError? {
        do {
            _ = try Scenario.parse(yaml, file: "bad.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func aMisspeltKeyNamesTheFieldAndTheLine() {
        let e = error("name: x\nbackground:\n  doseRate: 0.1\n")
        #expect(e?.description == "bad.yaml:3:3: background.doseRate: unknown key 'doseRate'; allowed keys are doseRateMicrosievertsPerHour, driftAmplitude, driftPeriodSeconds, terrestrialFraction, heightGradientPerMetre, shadowingScale, siteOffsetFraction, siteRadiusMetres, randomWalkPerRootHour, rain")
    }

    @Test func aWrongTypeNamesTheFieldAndTheLine() {
        let e = error("name: x\nseed: 1\ncontainers:\n  - number: A\n    type: 42G1\n    x: zero\n    y: 0\n")
        #expect(e?.line == 6)
        #expect(e?.field == "containers[0].x")
        #expect(e?.message == "'zero' is not a number")
    }

    @Test func anOutOfRangeValueSaysWhatIsAllowed() {
        let e = error("name: x\ncontainers:\n  - {number: A, type: 22G1, x: 0, y: 0, sources: [{nuclide: Cs-137, activityMBq: 5, along: 9, across: 1, height: 1}]}\n")
        #expect(e?.line == 3)
        #expect(e?.field == "containers[0].sources[0].along")
        #expect(e?.message == "9.0 is out of range; allowed 0.0 to 6.058")
    }

    @Test func unknownNamesListTheChoices() {
        let nuclide = error("name: x\ncontainers:\n  - number: A\n    type: 22G1\n    x: 0\n    y: 0\n    sources:\n      - {nuclide: Cs137, activityMBq: 1, along: 1, across: 1, height: 1}\n")
        #expect(nuclide?.line == 8)
        #expect(nuclide?.message == "'Cs137' is not allowed; allowed Cs-137, Co-60, Ra-226, Ir-192, Am-241")
        let fault = error("name: x\nfaults:\n  - {atSeconds: 1, kind: explode}\n")
        #expect(fault?.field == "faults[0].kind")
        #expect(fault?.message.hasPrefix("'explode' is not a fault kind; allowed noReply,") == true)
    }

    @Test func syntaxErrorsAndMissingKeysAreLocated() {
        let syntax = error("name: x\nrobot: [1, 2\n")
        #expect(syntax?.line == 3)
        #expect(syntax?.message.hasPrefix("YAML syntax:") == true)
        let missing = error("seed: 3\n")
        #expect(missing?.field == "name")
        #expect(missing?.message == "the key 'name' is required")
        #expect(error("")?.message == "the file is empty")
    }

    @Test func controlSocketFaultCommandsUseTheSameRules() throws {
        let kind = try Scenario.parseFaultCommand(["kind=crcError", "unit=2", "times=3"])
        #expect(kind == .bus(.crcError, unit: 2, times: 3))
        let writes = try Scenario.parseFaultCommand(["kind=noReply", "unit=2", "times=3", "requests=writes"])
        #expect(writes == .bus(.noReply, unit: 2, times: 3, requests: .writes))
        #expect(throws: ConfigurationFileError.self) { try Scenario.parseFaultCommand(["kind=noReply", "requests=polls"]) }
        #expect(throws: ConfigurationFileError.self) { try Scenario.parseFaultCommand(["kind=lateReply", "milliseconds=soon"]) }
        #expect(throws: ConfigurationFileError.self) { try Scenario.parseFaultCommand(["crcError"]) }
    }

    @Test func rigFilesNameExactlyOneBus() throws {
        let sim = try RigFile.parse("name: s\nkind: simulator\nscenario: hil/scenarios/clean-20ft.yaml\n", file: "s.yaml")
        #expect(sim.kind == .simulator)
        let bench = try RigFile.parse("name: b\nkind: hardware\nbus:\n  port: usb-serial:A1\n  baud: 19200\n", file: "b.yaml")
        #expect(bench.port == "usb-serial:A1")
        #expect(bench.baud == 19200)
        #expect(throws: ConfigurationFileError.self) { try RigFile.parse("name: b\nkind: hardware\n", file: "b.yaml") }
        #expect(throws: ConfigurationFileError.self) { try RigFile.parse("name: b\nkind: robot\n", file: "b.yaml") }
    }
}
