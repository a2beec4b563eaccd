import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// With line timing on, the simulator answers like a real RS-485 line: the measured
/// round trip is within ±10 % of the computed wire time.
@Suite(.serialized, .enabled(if: Rig.isSimulator, "times the simulator's line model"), .enabled(if: TestTier.hil), .timeLimit(.minutes(10)))
struct LineTimingTests {
    @Test(arguments: [115_200, 19_200])
    func roundTripMatchesTheWireTime(baud: Int) async throws {
        var scenario = try Rig.scenario("hil/scenarios/clean-20ft.yaml")
        scenario.lineTiming = LineTiming(enabled: true, baud: baud, bitsPerCharacter: 10, turnaroundMicroseconds: 500)
        let robot = try SimulatedRobot(scenario: scenario, responseTimeoutMilliseconds: 500)
        // Reading the chassis status: an 8-byte request and a 27-byte reply.
        let expected = scenario.lineTiming.roundTripMicroseconds(requestBytes: 8, responseBytes: 5 + 2 * ChassisStatus.spec.count)
        var samples: [Double] = []
        for _ in 0..<(baud > 19_200 ? 40 : 15) {
            let t0 = MonotonicClock.nanoseconds()
            _ = try await robot.bus.read(ChassisStatus.self, unit: 2)
            samples.append(Double(MonotonicClock.nanoseconds() - t0) / 1000)
        }
        samples.sort()
        // The wire time is a floor: scheduling noise on a loaded machine only adds to it,
        // so the fastest round trip is the one to compare.
        let fastest = samples[0]
        #expect(abs(fastest / expected - 1) <= 0.10, "fastest \(fastest) μs vs wire time \(expected) μs at \(baud) baud (median \(samples[samples.count / 2]))")
    }

    @Test func wireTimeFormula() {
        let fast = LineTiming(enabled: true, baud: 115_200, bitsPerCharacter: 10, turnaroundMicroseconds: 500)
        // 35 characters × 86.8 μs + 1750 μs gap + 500 μs turnaround.
        #expect(abs(fast.roundTripMicroseconds(requestBytes: 8, responseBytes: 27) - (35 * 1e7 / 115_200 + 1750 + 500)) < 1e-6)
        let slow = LineTiming(enabled: true, baud: 9600, bitsPerCharacter: 11, turnaroundMicroseconds: 0)
        #expect(abs(slow.interFrameGapMicroseconds() - 3.5 * 11e6 / 9600) < 1e-6)
    }
}
