import FirmwareProtocol
import Foundation

/// One detector sample placed in time and space: the detector's counters (latched together,
/// R8.2) and where the probe's carrier was at the instant they were latched.
public struct CountSample: Sendable, Equatable {
    /// Increments with every sample the trace keeps (a reader asks for those after one).
    public var sequence: UInt64
    /// Pulses since boot and the firmware clock that latched them (both wrap: subtract `&-`).
    public var counts: UInt32
    public var timeBaseMilliseconds: UInt32
    /// The latch instant on the controller's monotonic clock (see `CountTrace`).
    public var latchedAtNanoseconds: UInt64
    /// The chassis reference point and heading, and the lift, at the latch instant.
    public var xMetres: Double
    public var yMetres: Double
    public var headingDegrees: Double
    public var liftMetres: Double
    /// The chassis speed then (metres per second, signed along the heading).
    public var speedMetresPerSecond: Double
    /// The detector's overload latch (R8.3) was set in this sample.
    public var overload: Bool
    /// False when the detector restarted or the trace began here: the counts since the
    /// previous sample are not a difference to use.
    public var continuous: Bool
}

/// The detector's count samples with the chassis and lift position at each, for a survey
/// that measures while moving (issue 14). Fixed size and filled by the real-time tick
/// without allocating; readers copy out under the loop's lock.
///
/// **Time.** The detector's counters carry its own millisecond clock, not the controller's.
/// Each sample arrives some bus latency after it was latched: the reply's arrival minus
/// the firmware time, as an offset, is the clocks' difference plus that latency. The
/// smallest offset seen is the latency-free mapping (the sample that waited least); it is
/// allowed to creep up by `driftNanosecondsPerSample` so a firmware clock that runs slow
/// against the controller's (crystals differ by up to about 100 ppm) is followed. The
/// latch instant is then the firmware time plus that offset: its error is the latency of
/// the quickest recent reply (one exchange, a few milliseconds), not the latency of each.
///
/// **Place.** Chassis and lift status are polled on their own schedules; the trace keeps
/// the last two of each (their arrival times) and interpolates, or extrapolates at their
/// last velocity for at most `maximumExtrapolationNanoseconds`, to the latch instant.
struct CountTrace {
    static let capacity = 16_384
    /// How fast the offset may rise (a firmware clock slower than the host's): 50 µs a
    /// sample is 1 000 ppm at a 50 ms poll, ten times any crystal's error.
    static let driftNanosecondsPerSample: Int64 = 50_000
    static let maximumExtrapolationNanoseconds: UInt64 = 200_000_000

    private var ring = SampleRing(capacity: CountTrace.capacity,
                                  filler: CountSample(sequence: 0, counts: 0, timeBaseMilliseconds: 0, latchedAtNanoseconds: 0, xMetres: 0,
                                                      yMetres: 0, headingDegrees: 0, liftMetres: 0, speedMetresPerSecond: 0, overload: false,
                                                      continuous: false))
    var stored: Int { ring.stored }
    private(set) var sequence: UInt64 = 0
    private var lastDetectorSequence: UInt64 = 0
    private var lastTimeBase: UInt32 = 0
    private var unwrappedMilliseconds: Int64 = 0
    private var offsetNanoseconds: Int64?
    private var chassis = PoseHistory()
    private var lift = PoseHistory()

    init() {}

    /// Feeds the tick's newest blocks. Allocates nothing.
    mutating func record(chassis c: ChassisStatus?, chassisSequence: UInt64, chassisAt: UInt64, lift l: LiftStatus?, liftSequence: UInt64,
                         liftAt: UInt64, detector d: DetectorStatus?, detectorSequence: UInt64, detectorAt: UInt64) {
        if let c {
            chassis.add(sequence: chassisSequence, at: chassisAt, a: c.positionXMetres, b: c.positionYMetres, heading: c.headingDegrees,
                        speed: Double(c.velocityMillimetresPerSecond) / 1000)
        }
        if let l {
            lift.add(sequence: liftSequence, at: liftAt, a: l.heightMetres, b: 0, heading: 0, speed: Double(l.velocityMillimetresPerSecond) / 1000)
        }
        guard let d, detectorSequence > lastDetectorSequence, d.flags.contains(.dataValid) else { return }
        lastDetectorSequence = detectorSequence
        // The firmware clock, unwrapped; a step back of more than half the range is a restart.
        let step = d.timeBaseMilliseconds &- lastTimeBase
        var continuous = stored > 0
        if stored == 0 || step > UInt32.max / 2 {
            continuous = false
            offsetNanoseconds = nil
            unwrappedMilliseconds = Int64(d.timeBaseMilliseconds)
        } else {
            unwrappedMilliseconds += Int64(step)
        }
        lastTimeBase = d.timeBaseMilliseconds
        let firmwareNanoseconds = unwrappedMilliseconds * 1_000_000
        let observed = Int64(bitPattern: detectorAt) - firmwareNanoseconds
        if let previous = offsetNanoseconds {
            offsetNanoseconds = min(previous + Self.driftNanosecondsPerSample, observed)
        } else {
            offsetNanoseconds = observed
        }
        let latched = UInt64(max(0, firmwareNanoseconds + (offsetNanoseconds ?? observed)))
        let place = chassis.at(latched, limit: Self.maximumExtrapolationNanoseconds)
        let height = lift.at(latched, limit: Self.maximumExtrapolationNanoseconds)
        sequence += 1
        ring.append(CountSample(sequence: sequence, counts: d.counts, timeBaseMilliseconds: d.timeBaseMilliseconds,
                                latchedAtNanoseconds: latched, xMetres: place.a, yMetres: place.b, headingDegrees: place.heading,
                                liftMetres: height.a, speedMetresPerSecond: place.speed, overload: d.flags.contains(.overload),
                                continuous: continuous))
    }

    /// The samples after `sequence` still held, oldest first (allocates: not for the tick).
    func samples(after sequence: UInt64) -> [CountSample] { ring.all { $0.sequence > sequence } }
}

/// The last two samples of a polled position, to interpolate between.
private struct PoseHistory {
    struct Point {
        var at: UInt64 = 0
        var a = 0.0, b = 0.0, heading = 0.0, speed = 0.0
    }
    private var previous: Point?
    private var last: Point?
    private var lastSequence: UInt64 = 0

    mutating func add(sequence: UInt64, at: UInt64, a: Double, b: Double, heading: Double, speed: Double) {
        guard sequence > lastSequence else { return }
        lastSequence = sequence
        previous = last
        last = Point(at: at, a: a, b: b, heading: heading, speed: speed)
    }

    /// The position at `time`: between the last two samples, or from the last one along
    /// the line through both for at most `limit` nanoseconds.
    func at(_ time: UInt64, limit: UInt64) -> Point {
        guard let last else { return Point() }
        guard let previous, last.at > previous.at else { return last }
        let span = Double(last.at - previous.at)
        var clamped = min(time, last.at + limit)
        clamped = max(clamped, previous.at > limit ? previous.at - limit : 0)
        let f = (Double(clamped) - Double(previous.at)) / span
        var heading = last.heading - previous.heading
        if heading > 180 { heading -= 360 }
        if heading < -180 { heading += 360 }
        return Point(at: time, a: previous.a + f * (last.a - previous.a), b: previous.b + f * (last.b - previous.b),
                     heading: previous.heading + f * heading, speed: last.speed)
    }
}
