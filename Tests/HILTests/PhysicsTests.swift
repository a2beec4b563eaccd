import FirmwareProtocol
import Foundation
import RobotSimulator
import RobotTesting
import Testing

/// The simulated field and detector against the formulas of
/// `docs/domain.md`, Radiation model, computed here independently.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct PhysicsTests {
    /// A 40 ft container at the yard origin (long axis along +x, spanning y from
    /// −2.438 to 0) with one Cs-137 source; no background drift.
    func field(activity: Double, cargoDensity: Double, wallCentimetres: Double, background: Double = 0) -> RadiationField {
        let container = PlacedContainer(
            number: "MSKU9070323", type: .fortyFoot, x: 0, y: 0, headingDegrees: 0, cargoDensity: cargoDensity,
            wallThicknessCentimetres: wallCentimetres,
            sources: [PointSource(nuclide: .cs137, activityMBq: activity, along: 6, across: 0.5, height: 1.2)])
        return RadiationField(backgroundMicrosievertsPerHour: background, driftAmplitude: 0, containers: [container])
    }

    @Test(arguments: [0.5, 1.0, 2.0, 4.0])
    func inverseSquareThroughTheWall(distanceFromWall: Double) {
        // Detector straight out from the source through the left wall (y = 0): the ray
        // crosses 0.5 m of cargo and the wall at normal incidence.
        let activity = 100.0
        let r = 0.5 + distanceFromWall
        let withoutShielding = 0.09 * activity / (r * r)
        let empty = field(activity: activity, cargoDensity: 0, wallCentimetres: 0)
        let doseEmpty = empty.doseRate(x: 6, y: distanceFromWall, z: 1.2, atSeconds: 0)
        #expect(abs(doseEmpty / withoutShielding - 1) < 0.02, "unshielded \(doseEmpty) vs \(withoutShielding)")

        let loaded = field(activity: activity, cargoDensity: 0.4, wallCentimetres: 0.2)
        let expected = withoutShielding * exp(-0.58 * 0.2) * exp(-0.075 * 0.4 * 50)
        let dose = loaded.doseRate(x: 6, y: distanceFromWall, z: 1.2, atSeconds: 0)
        #expect(abs(dose / expected - 1) < 0.02, "shielded \(dose) vs \(expected) at \(distanceFromWall) m")
    }

    @Test func backgroundDriftsByItsAmplitude() {
        let f = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0.1, driftPeriodSeconds: 7200)
        #expect(abs(f.background(atSeconds: 0) - 0.1) < 1e-12)
        #expect(abs(f.background(atSeconds: 1800) - 0.11) < 1e-9)
        #expect(abs(f.background(atSeconds: 5400) - 0.09) < 1e-9)
    }

    /// Reads the detector's status registers straight from the firmware model.
    func detector(_ model: FirmwareModel) throws -> DetectorStatus {
        let registers = try model.read(unit: 4, table: .input, start: 16, count: DetectorStatus.spec.count).get()
        return try DetectorStatus(registers: registers)
    }

    @Test func countRateOverALongDwellMatchesWithinPoissonUncertainty() throws {
        // Robot parked 0.6 m out from the left wall, opposite the source.
        let f = field(activity: 50, cargoDensity: 0.4, wallCentimetres: 0.2, background: 0.1)
        let model = FirmwareModel(field: f, seed: 1234, startX: 6, startY: 0.6, startLiftMetres: 1.2)
        let dose = f.doseRate(x: 6, y: 0.6, z: 1.2, atSeconds: 0)
        let trueRate = 300 * dose
        let expectedRate = trueRate / (1 + trueRate * 2e-6)
        model.advance(seconds: 5)
        let first = try detector(model)
        let seconds = 200.0
        model.advance(seconds: seconds)
        let second = try detector(model)
        let (counts, milliseconds) = second.countsSince(first)
        #expect(milliseconds == UInt32(seconds * 1000))
        let measuredRate = Double(counts) / (Double(milliseconds) / 1000)
        let sigma = Double(counts).squareRoot() / seconds
        #expect(abs(measuredRate - expectedRate) < 3 * sigma,
                "measured \(measuredRate) cps, expected \(expectedRate) ± \(sigma) (dose \(dose) μSv/h)")
        // The instrument's filtered display agrees with the true dose rate to a few percent.
        #expect(abs(second.doseRateMicrosievertsPerHour / dose - 1) < 0.05,
                "display \(second.doseRateMicrosievertsPerHour) vs \(dose)")
    }

    @Test func deadTimeLosesCountsAtHighRates() throws {
        // 2000 μSv/h at 300 cps per μSv/h is 600 000 cps; with 2 μs dead time a
        // detector registers n / (1 + nτ) = 272 727 cps.
        let f = RadiationField(backgroundMicrosievertsPerHour: 2000, driftAmplitude: 0)
        let model = FirmwareModel(field: f, seed: 5)
        model.advance(seconds: 1)
        let a = try detector(model)
        model.advance(seconds: 10)
        let b = try detector(model)
        let rate = Double(b.countsSince(a).counts) / 10
        #expect(abs(rate / 272_727 - 1) < 0.01, "rate \(rate)")
    }

    @Test func aRunIsRepeatableForTheSameSeed() throws {
        func run() throws -> UInt32 {
            let model = FirmwareModel(field: field(activity: 10, cargoDensity: 0.3, wallCentimetres: 0.2, background: 0.1),
                                      seed: 77, startX: 6, startY: 0.3)
            model.advance(seconds: 30)
            return try detector(model).counts
        }
        #expect(try run() == (try run()))
    }
}
