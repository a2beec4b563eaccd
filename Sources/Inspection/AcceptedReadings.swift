import Foundation

/// A reading as a scan's record holds it. `set` groups the readings taken together:
/// a point's readings of one visit (the profile's readings per point, back to back), or
/// one background. A set cut short (a stop, a restart, the robot pushed off its place) is
/// kept, never topped up later: the point gets a new, whole set.
///
/// Set numbers carry the survey round ("epoch") too: background readings have set = the
/// epoch, point and re-measure sets `epoch × 1000 + attempt`. A resumed scan whose
/// background has grown too old measures a new background (the next epoch) and surveys
/// again; the readings of the earlier round stay in the record, superseded.
public struct RecordedReading: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case background, point, remeasure
    }

    public var kind: Kind
    public var pointIndex: Int
    public var ordinal: Int
    public var set: Int
    public var reading: DoseReading

    public init(kind: Kind, pointIndex: Int, ordinal: Int, set: Int, reading: DoseReading) {
        self.kind = kind
        self.pointIndex = pointIndex
        self.ordinal = ordinal
        self.set = set
        self.reading = reading
    }

    public static func setNumber(epoch: Int, attempt: Int) -> Int { epoch * 1000 + attempt }

    /// Attempt numbers from here on mark a reading taken across a stop (set `epoch × 1000 +
    /// cutAttempt + attempt`): kept in the record, never counted.
    public static let cutAttempt = 500
}

/// Which of a record's readings count: one set per point, never two, from the newest
/// survey round.
public struct AcceptedReadings: Sendable {
    /// The survey round in force: the newest background's.
    public var epoch = 0
    /// That round's background readings, in the order taken (start, then end).
    public var background: [DoseReading] = []
    /// Per point, its whole set of this round (or, while none is whole, its newest set so
    /// far: a verdict on a scan in progress).
    public var points: [Int: [DoseReading]] = [:]
    public var remeasures: [Int: [DoseReading]] = [:]
    /// Points with a whole set in this round.
    public var completePoints: Set<Int> = []
    /// Per point, the attempt number its next set in this round takes.
    public var nextAttempt: [Int: Int] = [:]
    /// The next free ordinal per kind and point (ordinals stay unique across sets).
    public var nextOrdinal: [String: Int] = [:]
    /// Readings kept in the record but not counted: cut-short sets and earlier rounds.
    public var supersededReadings = 0
    /// When this round's background was last measured.
    public var backgroundTakenAt: Date?

    public init() {}

    public init(_ recorded: [RecordedReading], readingsPerPoint: Int) {
        epoch = recorded.filter { $0.kind == .background }.map(\.set).max() ?? 0
        for r in recorded {
            let key = Self.ordinalKey(r.kind, r.pointIndex)
            nextOrdinal[key] = max(nextOrdinal[key] ?? 0, r.ordinal + 1)
        }
        let round = recorded.filter { $0.kind == .background ? $0.set == epoch : $0.set / 1000 == epoch }
        background = round.filter { $0.kind == .background }.map(\.reading)
        backgroundTakenAt = background.map(\.takenAt).max()
        var sets: [Int: [Int: [DoseReading]]] = [:]
        for r in round where r.kind == .point && r.set % 1000 < RecordedReading.cutAttempt {
            sets[r.pointIndex, default: [:]][r.set, default: []].append(r.reading)
        }
        for (index, bySet) in sets {
            let whole = bySet.filter { $0.value.count >= readingsPerPoint }.keys.max()
            let chosen = whole ?? bySet.keys.max() ?? 0
            points[index] = Array((bySet[chosen] ?? []).prefix(max(readingsPerPoint, 1)))
            if whole != nil { completePoints.insert(index) }
            nextAttempt[index] = (bySet.keys.map { $0 % 1000 }.max() ?? -1) + 1
        }
        for r in round where r.kind == .remeasure { remeasures[r.pointIndex, default: []].append(r.reading) }
        let counted = background.count + points.values.reduce(0) { $0 + $1.count } + remeasures.values.reduce(0) { $0 + $1.count }
        supersededReadings = recorded.count - counted
    }

    static func ordinalKey(_ kind: RecordedReading.Kind, _ index: Int) -> String { "\(kind.rawValue)/\(index)" }

    public func nextOrdinal(_ kind: RecordedReading.Kind, _ index: Int) -> Int { nextOrdinal[Self.ordinalKey(kind, index)] ?? 0 }
}
