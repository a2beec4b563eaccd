import Histogram

/// Counters and a latency histogram for one unit on a bus. Owned by the bus thread;
/// readers get a `DeviceStatisticsSnapshot` copy.
struct DeviceStatistics {
    var transactions: UInt64 = 0
    var failures: UInt64 = 0
    var timeouts: UInt64 = 0
    var crcErrors: UInt64 = 0
    var exceptions: UInt64 = 0
    var malformedReplies: UInt64 = 0
    var linkErrors: UInt64 = 0
    var retries: UInt64 = 0
    /// Round-trip time of successful transactions, microseconds.
    var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    /// How old a polled status block had become when the next copy replaced it (the
    /// oldest a reader can have seen), microseconds: the poll period plus the line's
    /// queueing, retries and gaps. The line budget's result, measured.
    var statusAge = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)

    mutating func recordSuccess(microseconds: UInt64) {
        transactions += 1
        _ = latency.record(min(microseconds, 60_000_000))
    }

    mutating func recordStatusAge(microseconds: UInt64) {
        _ = statusAge.record(min(microseconds, 60_000_000))
    }

    mutating func recordFailure(_ kind: BusError.Kind) {
        transactions += 1
        failures += 1
        switch kind {
        case .timeout: timeouts += 1
        case .crcMismatch: crcErrors += 1
        case .exception: exceptions += 1
        case .malformedReply, .wrongUnitReplied: malformedReplies += 1
        case .linkDown, .io: linkErrors += 1
        default: break
        }
    }

    func snapshot(unitId: UInt8, device: String) -> DeviceStatisticsSnapshot {
        let empty = latency.totalCount == 0
        return DeviceStatisticsSnapshot(
            unitId: unitId, device: device, transactions: transactions, failures: failures,
            timeouts: timeouts, crcErrors: crcErrors, exceptions: exceptions,
            malformedReplies: malformedReplies, linkErrors: linkErrors, retries: retries,
            latencyP50Microseconds: empty ? 0 : latency.valueAtPercentile(50),
            latencyP99Microseconds: empty ? 0 : latency.valueAtPercentile(99),
            latencyP999Microseconds: empty ? 0 : latency.valueAtPercentile(99.9),
            latencyMaxMicroseconds: empty ? 0 : latency.max,
            statusAgeP99Microseconds: statusAge.totalCount == 0 ? 0 : statusAge.valueAtPercentile(99),
            statusAgeMaxMicroseconds: statusAge.totalCount == 0 ? 0 : statusAge.max)
    }
}

/// A copy of one unit's bus statistics at a moment.
public struct DeviceStatisticsSnapshot: Sendable, Equatable, Codable {
    public let unitId: UInt8
    public let device: String
    public let transactions: UInt64
    public let failures: UInt64
    public let timeouts: UInt64
    public let crcErrors: UInt64
    public let exceptions: UInt64
    public let malformedReplies: UInt64
    public let linkErrors: UInt64
    public let retries: UInt64
    public let latencyP50Microseconds: UInt64
    public let latencyP99Microseconds: UInt64
    public let latencyP999Microseconds: UInt64
    public let latencyMaxMicroseconds: UInt64
    /// The age a unit's status had reached when it was refreshed (p99, and the worst).
    public let statusAgeP99Microseconds: UInt64
    public let statusAgeMaxMicroseconds: UInt64
}
