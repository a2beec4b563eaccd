import RobotControl
import RobotTesting
import Testing

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct TrapezoidalProfileTests {
    @Test func longMovesCruiseAndShortMovesAreTriangular() {
        // 3 m at 0.5 m/s and 0.5 m/s²: 1 s up, 5 s cruise, 1 s down.
        let long = TrapezoidalProfile(distance: 3, maxSpeed: 0.5, acceleration: 0.5)
        #expect(abs(long.duration - 7) < 1e-12)
        #expect(long.peakSpeed == 0.5)
        #expect(abs(long.position(at: 1) - 0.25) < 1e-12)
        #expect(abs(long.position(at: 3.5) - 1.5) < 1e-12)
        #expect(long.position(at: 8) == 3)
        // 0.2 m never reaches cruise: 2·√(d/a) = 2·√0.4.
        let short = TrapezoidalProfile(distance: -0.2, maxSpeed: 0.5, acceleration: 0.5)
        #expect(abs(short.duration - 2 * 0.4.squareRoot()) < 1e-12)
        #expect(abs(short.peakSpeed - 0.1.squareRoot()) < 1e-12)
        #expect(abs(short.position(at: short.duration / 2) - 0.1) < 1e-12)
    }
}

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct KeepOutZoneTests {
    let zone = KeepOutZone(minX: 0, minY: -2.5, maxX: 6, maxY: 0)

    @Test func segmentsThatCrossOrEnterAreCaught() {
        #expect(zone.intersects(fromX: -1, fromY: -1, toX: 1, toY: -1))
        #expect(zone.intersects(fromX: -1, fromY: 1, toX: 7, toY: -3.5), "a diagonal straight through")
        #expect(zone.intersects(fromX: 3, fromY: -1, toX: 3, toY: -2), "wholly inside")
    }

    @Test func segmentsOutsideOrAlongTheEdgePass() {
        #expect(!zone.intersects(fromX: -1, fromY: 0.1, toX: 7, toY: 0.1))
        #expect(!zone.intersects(fromX: -1, fromY: 1, toX: -0.5, toY: -3))
        #expect(!zone.intersects(fromX: 0, fromY: 0.2, toX: 6, toY: 0.2))
        #expect(!zone.contains(x: 6.01, y: -1))
    }
}

@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ControlConfigurationTests {
    @Test func defaultsAreValid() {
        #expect(ControlConfiguration().problems().isEmpty)
    }

    @Test func problemsNameTheFieldAndTheAllowedRange() {
        var c = ControlConfiguration()
        c.liftMaximumMetres = 3.2
        c.watchdogRefreshMilliseconds = 400
        c.loopRateHertz = 0
        let problems = c.problems()
        #expect(problems.contains("lift range 0.35-3.2 m must lie inside the firmware's 0.3-2.8 m, minimum below maximum"))
        #expect(problems.contains("watchdogRefreshMilliseconds must be at most half of watchdogTimeoutMilliseconds"))
        #expect(problems.contains("loopRateHertz 0.0 must be 1 to 1000"))
    }
}
