import FirmwareProtocol

/// Where the range pair's two sensors sit on the robot (G9): forward of the reference
/// point along the heading, and right of it; both beams point to the robot's right, square
/// to its heading. Installation data, like the probe's mount (`ranging:` in robotd.yaml).
public struct RangePairGeometry: Sendable, Equatable, Codable {
    public var frontForwardMetres: Double
    public var rearForwardMetres: Double
    public var rightMetres: Double

    public init(frontForwardMetres: Double = 0.30, rearForwardMetres: Double = -0.30, rightMetres: Double = 0.30) {
        self.frontForwardMetres = frontForwardMetres
        self.rearForwardMetres = rearForwardMetres
        self.rightMetres = rightMetres
    }

    /// Problems, each naming the field and what is allowed.
    public func problems() -> [String] {
        var found: [String] = []
        if !(frontForwardMetres - rearForwardMetres >= 0.1) {
            found.append("ranging: frontForwardMetres (\(frontForwardMetres)) must be at least 0.1 m ahead of rearForwardMetres (\(rearForwardMetres))")
        }
        for (name, value) in [("frontForwardMetres", frontForwardMetres), ("rearForwardMetres", rearForwardMetres), ("rightMetres", rightMetres)]
        where !(abs(value) <= 2) {
            found.append("ranging: \(name) \(value) must lie within ±2 m of the reference point")
        }
        return found
    }
}

/// One reading of the range pair with the pose the chassis latched with it.
public struct RangeSample: Sendable, Equatable {
    public var sequence: UInt64
    /// When the controller received it (its monotonic clock).
    public var receivedAtNanoseconds: UInt64
    /// Distances along each beam; nil without an echo in range, or on a sensor fault.
    public var frontMetres: Double?
    public var rearMetres: Double?
    public var sensorFault: Bool
    public var xMetres: Double
    public var yMetres: Double
    public var headingDegrees: Double

    public init(sequence: UInt64, receivedAtNanoseconds: UInt64, frontMetres: Double?, rearMetres: Double?, sensorFault: Bool,
                xMetres: Double, yMetres: Double, headingDegrees: Double) {
        self.sequence = sequence
        self.receivedAtNanoseconds = receivedAtNanoseconds
        self.frontMetres = frontMetres
        self.rearMetres = rearMetres
        self.sensorFault = sensorFault
        self.xMetres = xMetres
        self.yMetres = yMetres
        self.headingDegrees = headingDegrees
    }
}

/// A fixed-size ring of the newest samples: `append` overwrites the oldest and allocates
/// nothing (the tick fills it); `all(where:)` copies out, oldest first (readers, under the
/// loop's lock).
struct SampleRing<Sample> {
    private var storage: [Sample]
    private var next = 0
    private(set) var stored = 0

    init(capacity: Int, filler: Sample) {
        storage = Array(repeating: filler, count: capacity)
    }

    mutating func append(_ sample: Sample) {
        storage[next] = sample
        next = (next + 1) % storage.count
        stored = min(stored + 1, storage.count)
    }

    /// The samples held that pass `keep`, oldest first (allocates: not for the tick).
    func all(where keep: (Sample) -> Bool) -> [Sample] {
        var out: [Sample] = []
        let first = (next - stored + storage.count) % storage.count
        for i in 0..<stored {
            let s = storage[(first + i) % storage.count]
            if keep(s) { out.append(s) }
        }
        return out
    }
}

/// The range pair's readings, fixed size and filled by the tick without allocating (like
/// `CountTrace`); readers copy out under the loop's lock.
struct RangeTrace {
    static let capacity = 8_192

    private var ring = SampleRing(capacity: RangeTrace.capacity,
                                  filler: RangeSample(sequence: 0, receivedAtNanoseconds: 0, frontMetres: nil, rearMetres: nil,
                                                      sensorFault: false, xMetres: 0, yMetres: 0, headingDegrees: 0))
    private(set) var sequence: UInt64 = 0
    private var lastBlockSequence: UInt64 = 0

    /// Keeps a newly polled block. Allocates nothing.
    mutating func record(_ range: ChassisRange?, blockSequence: UInt64, at: UInt64) {
        guard let range, blockSequence > lastBlockSequence else { return }
        lastBlockSequence = blockSequence
        sequence += 1
        ring.append(RangeSample(sequence: sequence, receivedAtNanoseconds: at, frontMetres: range.frontMetres, rearMetres: range.rearMetres,
                                sensorFault: range.flags.contains(.sensorFault), xMetres: range.xMetres, yMetres: range.yMetres,
                                headingDegrees: range.headingDegrees))
    }

    /// The samples after `sequence` still held, oldest first (allocates: not for the tick).
    func samples(after sequence: UInt64) -> [RangeSample] { ring.all { $0.sequence > sequence } }
}
