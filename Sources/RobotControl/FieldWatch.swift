import FirmwareProtocol
import Foundation

/// What the controller does about people and vehicles the chassis' protective-field
/// scanner sees (protocol 1.1, H9; `people:` in robotd.yaml). The firmware stops the
/// chassis on its own when something enters the protective field; the controller slows
/// down in the warning field and decides when to go on.
public struct PeoplePolicy: Sendable, Equatable, Codable {
    /// The speed the chassis slows to while something is in the warning field.
    public var warningSpeedMetresPerSecond = 0.2
    /// How long the protective field must stay clear before a stopped move goes on.
    public var resumeAfterClearMilliseconds = 2000
    /// How long the warning field must stay clear before a slowed move speeds up again.
    public var speedUpAfterClearMilliseconds = 1000
    /// How long a move may wait for a clear field before it fails (the scan then pauses,
    /// resumable, and the officer is told).
    public var holdLimitSeconds = 60.0
    /// The chassis outline the scanner protects, from the reference point (installation
    /// data): for the officer's top view, which draws the protective field H9.1 asks for.
    public var outlineForwardMetres = 0.45
    public var outlineRearMetres = 0.45
    public var outlineHalfWidthMetres = 0.30

    public init() {}

    public typealias Extent = (front: Double, rear: Double, side: Double)

    /// The protective field H9.1 asks for at least, and the warning field (1 m beyond it on
    /// the sides it covers), in the robot's frame (metres from the reference point: ahead,
    /// behind, to each side), at this forward speed or turning on the spot at this rate
    /// (the firmware's quick stops, D5.2: 1.0 m/s², 180 °/s²).
    public func fields(speedMetresPerSecond speed: Double, turnDegreesPerSecond turn: Double = 0) -> (protective: Extent, warning: Extent) {
        let beyond = ProtectiveFieldMinimum.warningBeyondMetres
        if abs(speed) < 0.005 {
            let corner = hypot(max(outlineForwardMetres, outlineRearMetres), outlineHalfWidthMetres)
            let reach = ProtectiveFieldMinimum.allRound(cornerSpeedMetresPerSecond: abs(turn) * .pi / 180 * corner, stopSeconds: abs(turn) / 180)
            let protective = (outlineForwardMetres + reach, outlineRearMetres + reach, outlineHalfWidthMetres + reach)
            return (protective, (protective.0 + beyond, protective.1 + beyond, protective.2 + beyond))
        }
        let reach = ProtectiveFieldMinimum.driving(speedMetresPerSecond: speed)
        let side = outlineHalfWidthMetres + reach.side
        if speed > 0 {
            let front = outlineForwardMetres + reach.ahead
            return ((front, outlineRearMetres, side), (front + beyond, outlineRearMetres, side + beyond))
        }
        let rear = outlineRearMetres + reach.ahead
        return ((outlineForwardMetres, rear, side), (outlineForwardMetres, rear + beyond, side + beyond))
    }

    /// Problems, each naming the field and what is allowed.
    public func problems() -> [String] {
        var found: [String] = []
        if !(0.01...0.5).contains(warningSpeedMetresPerSecond) {
            found.append("people: warningSpeedMetresPerSecond \(warningSpeedMetresPerSecond) must be 0.01 to 0.5 m/s")
        }
        if !(500...60_000).contains(resumeAfterClearMilliseconds) {
            found.append("people: resumeAfterClearMilliseconds \(resumeAfterClearMilliseconds) must be 500 to 60000 (a person must have gone)")
        }
        if !(0...60_000).contains(speedUpAfterClearMilliseconds) {
            found.append("people: speedUpAfterClearMilliseconds \(speedUpAfterClearMilliseconds) must be 0 to 60000")
        }
        if !(5...3600).contains(holdLimitSeconds) {
            found.append("people: holdLimitSeconds \(holdLimitSeconds) must be 5 to 3600")
        }
        for (name, value) in [("outlineForwardMetres", outlineForwardMetres), ("outlineRearMetres", outlineRearMetres),
                              ("outlineHalfWidthMetres", outlineHalfWidthMetres)] where !(0.05...2).contains(value) {
            found.append("people: \(name) \(value) must be 0.05 to 2 m")
        }
        return found
    }
}

/// The scanner as the controller last read it (chassis status flags, H9.4).
public enum FieldScannerState: String, Sendable, Equatable, Codable {
    /// The chassis has no scanner (a 1.0 chassis, or `features` without `fieldScanner`).
    case absent
    case clear
    /// Something is in the warning field.
    case warning
    /// Something is in the protective field: the chassis does not move.
    case protective
    /// The scanner reports a fault: the chassis does not move.
    case fault
}

/// One thing the controller did about the fields, for the record.
public struct FieldEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, Codable {
        /// Something entered the warning field: the move slowed down.
        case slowed
        /// The warning field stayed clear: the move went back to its speed.
        case spedUp
        /// The firmware stopped the chassis for the protective field (H9.2).
        case protectiveStop
        /// The protective field stayed clear and the move went on (recorded once it has run
        /// 3 s, or arrived, without being stopped again).
        case resumed
        /// The field did not clear within the hold limit: the move failed.
        case gaveUp
        /// The scanner reported a fault, or recovered from one.
        case scannerFault
        case scannerRecovered
    }

    public var sequence: UInt64
    public var kind: Kind
    /// The controller's monotonic clock.
    public var atNanoseconds: UInt64
    public var xMetres: Double
    public var yMetres: Double
    public var headingDegrees: Double
    public var speedMetresPerSecond: Double
}

/// The controller's side of H9, kept by the loop: the hold of a stopped move, the slow
/// state of a moving one, and the events (a fixed ring, filled without allocating).
struct FieldWatch {
    var scanner = FieldScannerState.absent
    /// When the current chassis move was stopped by the protective field (0: not held).
    var heldSinceNanoseconds: UInt64 = 0
    /// The command's time still allowed when it was held; its deadline waits with it.
    var heldRemainingNanoseconds: UInt64 = 0
    /// Since when the protective (held) or warning (slowed) field has been clear; 0 while not.
    var clearSinceNanoseconds: UInt64 = 0
    /// When a held move last went on (0: not since its command).
    var resumedAtNanoseconds: UInt64 = 0
    /// A move was sent again and has not yet run long enough to call the hold over.
    var resumePending = false
    /// A protective stop this soon after going on continues the hold it came from.
    static let continuedHoldNanoseconds: UInt64 = 3_000_000_000
    /// The move runs at the warning speed.
    var slowed = false
    /// The speed the move was commanded at.
    var commandedSpeedMetresPerSecond = 0.5
    var protectiveStops: UInt64 = 0
    var slowdowns: UInt64 = 0
    var sequence: UInt64 = 0
    var events = SampleRing(capacity: 256, filler: FieldEvent(sequence: 0, kind: .slowed, atNanoseconds: 0, xMetres: 0, yMetres: 0,
                                                               headingDegrees: 0, speedMetresPerSecond: 0))

    mutating func record(_ kind: FieldEvent.Kind, at now: UInt64, pose: (x: Double, y: Double, heading: Double, speed: Double)) {
        sequence += 1
        events.append(FieldEvent(sequence: sequence, kind: kind, atNanoseconds: now, xMetres: pose.x, yMetres: pose.y,
                                 headingDegrees: pose.heading, speedMetresPerSecond: pose.speed))
    }
}
