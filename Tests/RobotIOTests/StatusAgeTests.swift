import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// The age of each unit's status (issue 16, the line budget, measured): the bus records
/// how old a polled block had become when the next copy replaced it. On a real-time
/// 115200-baud line (the simulator's wire timing, 0.5 ms turnaround) the default polls
/// take about 79 % of the line and every status stays near its period; polls that ask
/// for more than the line can carry leave the statuses far older than their periods.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(5))) struct StatusAgeTests {
    static let line = LineTiming(enabled: true, baud: 115_200, bitsPerCharacter: 10, turnaroundMicroseconds: 500)

    func ages(periods: [UInt8: Int], seconds: Double) async throws -> [UInt8: DeviceStatisticsSnapshot] {
        let h = try SimulatorHarness(lineTiming: Self.line)
        let blocks: [UInt8: BlockSpec] = [1: SafetyStatus.spec, 2: ChassisStatus.spec, 3: LiftStatus.spec, 4: DetectorStatus.spec]
        for (unit, period) in periods { h.bus.addPoll(unit: unit, block: blocks[unit]!, periodMilliseconds: period) }
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        return Dictionary(uniqueKeysWithValues: h.bus.statisticsSnapshot().map { ($0.unitId, $0) })
    }

    @Test func theDefaultPollsKeepEveryStatusNearItsPeriod() async throws {
        let periods: [UInt8: Int] = [1: 20, 2: 20, 3: 20, 4: 50]
        let stats = try await ages(periods: periods, seconds: 4)
        for (unit, period) in periods {
            let s = try #require(stats[unit])
            let p99 = Double(s.statusAgeP99Microseconds) / 1000
            print("status age, unit \(unit) every \(period) ms: p99 \(p99) ms, worst \(Double(s.statusAgeMaxMicroseconds) / 1000) ms")
            #expect(p99 >= Double(period) * 0.9 && p99 <= Double(period) + 40, "unit \(unit): p99 \(p99) ms for a \(period) ms poll")
        }
    }

    @Test func pollsTheLineCannotCarryLeaveStatusesFarOlderThanTheirPeriods() async throws {
        // Every unit every 5 ms: about 4 × 5 ms of wire time wanted each 5 ms (400 %).
        let periods: [UInt8: Int] = [1: 5, 2: 5, 3: 5, 4: 5]
        let stats = try await ages(periods: periods, seconds: 3)
        for unit in periods.keys {
            let s = try #require(stats[unit])
            let p99 = Double(s.statusAgeP99Microseconds) / 1000
            print("status age, unit \(unit) every 5 ms: p99 \(p99) ms")
            #expect(p99 >= 15, "unit \(unit): p99 \(p99) ms although polled every 5 ms")
        }
    }
}
