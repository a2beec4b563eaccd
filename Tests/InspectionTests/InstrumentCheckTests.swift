import Foundation
import GRDB
import Inspection
@testable import InspectionStore
import RobotControl
import RobotSimulator
import RobotTesting
import Testing

/// The daily check-source test, end to end in virtual time: the simulator's probe with a
/// check source in its holder, the loop's measurement, the store, and the gate that keeps a
/// drifted detector from scanning.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct InstrumentCheckTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("checks-\(UUID().uuidString).sqlite").path
    }

    func robot(responseDrift: Double) async throws -> VirtualRobot {
        var scenario = try Scenario.load(path: ScanTests.root.appendingPathComponent("hil/scenarios/clean-20ft.yaml").path)
        scenario.settings.detector.responseDriftFraction = responseDrift
        let robot = try await VirtualRobot(scenario: scenario)
        robot.startRunning(idleWallSeconds: 0.2)
        robot.model.inject(.checkSource(microsievertsPerHour: 5))
        return robot
    }

    func plan() throws -> ScanPlan {
        ScanPlan(container: ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .twentyFoot, xMetres: 0, yMetres: 0),
                 profile: ProcedureProfile())
    }

    @Test func aResponseIsTheNetOverTheReference() {
        let reading = DoseReading(counts: 45_000, seconds: 30, countRatePerSecond: 1500, rawDoseRate: 5.0, grossDoseRate: 5.0,
                                  instrumentDoseRate: 5.0, overload: false, takenAt: Date())
        let good = InstrumentCheck.evaluate(serialNumber: "GD-1", reading: reading, referenceMicrosievertsPerHour: 4.9, background: 0.1,
                                            actor: "officer", takenAt: "2026-12-07T06:00:00Z")
        #expect(abs(good.response - 1) < 1e-12)
        #expect(good.passed)
        #expect(good.responseUncertainty > 0.004 && good.responseUncertainty < 0.02)
        let low = InstrumentCheck.evaluate(serialNumber: "GD-1", reading: reading, referenceMicrosievertsPerHour: 6.0, background: 0.1,
                                           actor: "officer", takenAt: "2026-12-07T06:00:00Z")
        #expect(!low.passed)
        #expect(low.description.contains("-18.3 %") && low.description.contains("±10 %"), "\(low.description)")
    }

    @Test func aDriftedDetectorFailsItsCheckAndMayNotScanUntilOnePasses() async throws {
        let path = temporaryPath()
        let store = try ScanStore(path: path)
        let drifted = try await robot(responseDrift: -0.2)
        defer { drifted.stopFreeRunning() }
        let measured = try await InstrumentCheckSession.measure(loop: drifted.loop, seconds: 30)
        let failed = try InstrumentCheckSession.record(store: store, reading: measured.reading, serialNumber: measured.serialNumber,
                                                       typedReference: 5, actor: "officer 7")
        #expect(!failed.passed)
        #expect(abs(failed.response - 0.8) < 0.03, "response \(failed.response)")
        do {
            _ = try ScanSession.create(store: store, loop: drifted.loop, plan: try plan(), robotId: "RIR-01", officer: "officer 7")
            Issue.record("a scan started on a detector that failed its check")
        } catch {
            #expect("\(error)".contains("check source") && "\(error)".contains("-2"), "\(error)")
        }
        // The records are append-only, and the audit log has the test.
        let queue = try DatabaseQueue(path: path)
        #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "DELETE FROM instrument_checks") } }
        #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "UPDATE instrument_checks SET passed = 1") } }
        #expect(try store.auditEntries().contains { $0.action == "instrument.check" && $0.detail.contains("FAILED") })
    }

    @Test func aPassingCheckGoesIntoTheScansInstrumentRecord() async throws {
        let store = try ScanStore(path: temporaryPath())
        let healthy = try await robot(responseDrift: 0)
        defer { healthy.stopFreeRunning() }
        let measured = try await InstrumentCheckSession.measure(loop: healthy.loop, seconds: 30)
        let check = try InstrumentCheckSession.record(store: store, reading: measured.reading, serialNumber: measured.serialNumber,
                                                      typedReference: 5, actor: "officer 7")
        #expect(check.passed, "response \(check.response)")
        let session = try ScanSession.create(store: store, loop: healthy.loop, plan: try plan(), robotId: "RIR-01", officer: "officer 7")
        #expect(session.instrument.lastCheck?.passed == true)
        #expect(session.instrument.deadTimeSeconds == healthy.loop.configuration.detectorDeadTimeSeconds)
        #expect(try store.instrumentChecks().count == 1)
    }

    @Test func aRegisteredCheckSourceIsTheReferenceDecayedToTheDay() async throws {
        let store = try ScanStore(path: temporaryPath())
        let healthy = try await robot(responseDrift: 0)
        defer { healthy.stopFreeRunning() }
        let measured = try await InstrumentCheckSession.measure(loop: healthy.loop, seconds: 30)
        // Nothing registered and nothing typed: refused, saying what to do.
        do {
            _ = try InstrumentCheckSession.record(store: store, reading: measured.reading, serialNumber: measured.serialNumber,
                                                  typedReference: nil, actor: "officer 7", day: 20_261_207)
            Issue.record("a check ran without any reference")
        } catch {
            #expect("\(error)".contains("no check source is registered") && "\(error)".contains("check-source-register"), "\(error)")
        }
        // Certified at 5.4 μSv/h ten years ago: 5.4 · 2^(−10/30.08) = 4.29 today. The
        // simulator's source gives 5, so the probe reads about 14 % high against the decayed value.
        let certificate = try CheckSourceReference(serialNumber: measured.serialNumber, sourceId: "CS-0042", referenceMicrosievertsPerHour: 5.4,
                                                   referenceDate: 20_161_207, registeredAt: "2026-12-07T06:00:00Z", actor: "supervisor")
            .validated(today: 20_261_207)
        #expect(abs(certificate.doseRate(on: 20_261_207) - 5.4 * pow(2, -3652.0 / CheckSourceReference.caesium137HalfLifeDays)) < 1e-9)
        try store.registerCheckSource(certificate)
        let decayed = try InstrumentCheckSession.record(store: store, reading: measured.reading, serialNumber: measured.serialNumber,
                                                        typedReference: nil, actor: "officer 7", day: 20_261_207)
        #expect(decayed.sourceId == "CS-0042")
        #expect(abs(decayed.referenceMicrosievertsPerHour - 4.289) < 0.005, "\(decayed.referenceMicrosievertsPerHour)")
        #expect(!decayed.passed, "response \(decayed.response)")
        // The certificate's value typed in instead is refused: it disagrees with the decayed one.
        do {
            _ = try InstrumentCheckSession.record(store: store, reading: measured.reading, serialNumber: measured.serialNumber,
                                                  typedReference: 5.4, actor: "officer 7", day: 20_261_207)
            Issue.record("a typed reference overrode the registered source")
        } catch {
            #expect("\(error)".contains("disagrees with the registered check source CS-0042"), "\(error)")
        }
        // A new source registered today is in force; the older one stays on record.
        try store.registerCheckSource(CheckSourceReference(serialNumber: measured.serialNumber, sourceId: "CS-0043",
                                                           referenceMicrosievertsPerHour: 5.0, referenceDate: 20_261_207,
                                                           registeredAt: "2026-12-07T07:00:00Z", actor: "supervisor"))
        let fresh = try InstrumentCheckSession.record(store: store, reading: measured.reading, serialNumber: measured.serialNumber,
                                                      typedReference: 5.04, actor: "officer 7", day: 20_261_207)
        #expect(fresh.sourceId == "CS-0043" && fresh.passed && fresh.referenceMicrosievertsPerHour == 5.0)
        #expect(try store.auditEntries().filter { $0.action == "instrument.checkSource" }.count == 2)
    }

    @Test func aCheckSourceCertificateIsValidatedWithTheAllowedRanges() {
        func problem(_ reference: Double, _ date: UInt32, halfLife: Double = CheckSourceReference.caesium137HalfLifeDays) -> String {
            do {
                _ = try CheckSourceReference(serialNumber: "GD-1", sourceId: "CS-1", referenceMicrosievertsPerHour: reference, referenceDate: date,
                                             halfLifeDays: halfLife, registeredAt: "", actor: "").validated(today: 20_261_207)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(problem(5, 20_261_207) == "accepted")
        #expect(problem(0.1, 20_261_207).contains("allowed 0.5 to 1000"))
        #expect(problem(.nan, 20_261_207).contains("out of range"))
        #expect(problem(5, 20_271_207).contains("between 1970 and today (20261207)"))
        #expect(problem(5, 20_260_231).contains("not a date"))
        #expect(problem(5, 20_261_207, halfLife: 1).contains("allowed 30 to 1 000 000"))
    }
}
