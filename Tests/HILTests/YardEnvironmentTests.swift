import Foundation
import RobotSimulator
import RobotTesting
import Testing

/// The simulator's yard environment (`hil/README.md`, "Radiation environment") against
/// figures worked out here: shadowing by a loaded container, NORM cargo, rain, the random
/// walk, the site offset and the probe's energy response.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct YardEnvironmentTests {
    /// A 40 ft container at the yard origin: its left wall is y = 0, the box spans y −2.438 to 0.
    func field(density: Double = 0.5, shadowing: Double = 1, norm: Double = 0) -> RadiationField {
        var container = PlacedContainer(number: "MSKU9070323", type: .fortyFoot, x: 0, y: 0, cargoDensity: density)
        container.normDoseRateAtContactMicrosievertsPerHour = norm
        var f = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0, containers: [container])
        f.environment.shadowingScale = shadowing
        return f
    }

    /// Beside the middle of a long wall a loaded container hides about half of the ground,
    /// which is 70 % of the background: 25–40 % less, the portal monitors' "up to 40 %".
    /// An empty box's 2 mm walls hide little; 20 m away nothing is hidden.
    @Test func aLoadedContainerShadowsTheGround() {
        let loaded = field().doseRate(x: 6, y: 0.1, z: 1.5, atSeconds: 0)
        #expect(loaded > 0.060 && loaded < 0.075, "loaded \(loaded)")
        let empty = field(density: 0).doseRate(x: 6, y: 0.1, z: 1.5, atSeconds: 0)
        #expect(empty > 0.09 && empty > loaded + 0.02, "empty \(empty)")
        let far = field().doseRate(x: 6, y: 20, z: 1.0, atSeconds: 0)
        #expect(abs(far - 0.1) < 0.001, "20 m away \(far)")
        // Corners see more of the ground.
        let corner = field().doseRate(x: 0.25, y: 0.1, z: 1.5, atSeconds: 0)
        #expect(corner > loaded + 0.003)
        // Off by default: the original uniform field.
        #expect(abs(field(shadowing: 0).doseRate(x: 6, y: 0.1, z: 1.5, atSeconds: 0) - 0.1) < 1e-12)
    }

    /// NORM: flush against an endless wall of the cargo the probe reads the contact figure;
    /// at 0.10 m from a 40 ft wall a little less (the box is not endless).
    @Test func normCargoRaisesEveryFace() {
        let f = field(shadowing: 0, norm: 0.3)
        let middle = f.doseRate(x: 6, y: 0.1, z: 1.3, atSeconds: 0) - 0.1
        #expect(middle > 0.22 && middle < 0.3, "net at the middle of the wall \(middle)")
        let end = f.doseRate(x: -0.1, y: -1.2, z: 1.3, atSeconds: 0) - 0.1
        #expect(end > 0.15, "the door end too: \(end)")
    }

    @Test func rainRisesThenDecaysWithTheProgeny() {
        var f = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0)
        f.environment.rain = [RainEvent(startSeconds: 600, peakFraction: 1.0, riseMinutes: 10, durationMinutes: 20, decayHalfLifeMinutes: 35)]
        #expect(abs(f.background(atSeconds: 0) - 0.1) < 1e-12)
        // After 20 min of rain: 1 − e^(−2) of the peak.
        let stop = f.background(atSeconds: 600 + 1200)
        #expect(abs(stop - 0.1 * (1 + (1 - exp(-2)))) < 1e-9)
        // One half-life later, half of the rise is left.
        let later = f.background(atSeconds: 600 + 1200 + 35 * 60)
        #expect(abs((later - 0.1) - (stop - 0.1) / 2) < 1e-9)
    }

    @Test func theRandomWalkIsSeeded() {
        func walk(_ seed: UInt64) -> [Double] {
            var f = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0)
            f.environment.randomWalkPerRootHour = 0.02
            f.environment.prepare(seed: seed)
            return stride(from: 0.0, through: 3600, by: 600).map { f.background(atSeconds: $0) }
        }
        #expect(walk(7) == walk(7))
        #expect(walk(7) != walk(8))
        #expect(walk(7).allSatisfy { abs($0 / 0.1 - 1) < 0.1 })
    }

    @Test func theSiteOffsetAppliesNearContainersOnly() {
        var f = field(shadowing: 0)
        f.environment.siteOffsetFraction = 0.1
        #expect(abs(f.doseRate(x: 6, y: 0.1, z: 1, atSeconds: 0) - 0.11) < 1e-12)
        #expect(abs(f.doseRate(x: -10, y: -1.2, z: 1, atSeconds: 0) - 0.1) < 1e-12, "the background station, 10 m away")
    }

    @Test func theProbeAnswersEachNuclideByItsResponse() {
        var container = PlacedContainer(number: "MSKU9070323", type: .fortyFoot, x: 0, y: 0, cargoDensity: 0)
        container.sources = [PointSource(nuclide: .co60, activityMBq: 10, along: 6, across: 0.05, height: 1.2)]
        let f = RadiationField(backgroundMicrosievertsPerHour: 0.1, driftAmplitude: 0, containers: [container])
        var response = EnergyResponse()
        response.byNuclide["Co-60"] = 0.85
        let flat = f.doseRate(x: 6, y: 0.1, z: 1.2, atSeconds: 0) - 0.1
        let probe = f.doseRate(x: 6, y: 0.1, z: 1.2, atSeconds: 0, response: response) - 0.1
        #expect(abs(probe / flat - 0.85) < 1e-9)
    }

    @Test func theScenarioKeysReachTheField() throws {
        let yaml = """
        name: rainy yard
        seed: 3
        background:
          doseRateMicrosievertsPerHour: 0.12
          shadowingScale: 1
          siteOffsetFraction: 0.05
          randomWalkPerRootHour: 0.01
          rain:
            - startSeconds: 900
              peakFraction: 0.8
        detector:
          deadTimeParalysable: true
          response:
            Co-60: 0.9
        containers:
          - number: MSKU9070323
            type: 40ft
            x: 0
            y: 0
            normDoseRateAtContactMicrosievertsPerHour: 0.2
        """
        let s = try Scenario.parse(yaml)
        #expect(s.field.environment.shadowingScale == 1)
        #expect(s.field.environment.rain == [RainEvent(startSeconds: 900, peakFraction: 0.8)])
        #expect(s.field.containers[0].normDoseRateAtContactMicrosievertsPerHour == 0.2)
        #expect(s.settings.detector.deadTimeParalysable)
        #expect(s.settings.detector.response.factor(.co60) == 0.9)
        do {
            _ = try Scenario.parse("name: x\nbackground:\n  shadowingScale: 9\n")
            Issue.record("a shadowing scale of 9 was accepted")
        } catch {
            #expect(error.field == "background.shadowingScale")
            #expect(error.message.contains("3"))
        }
    }
}
