import Foundation
import RobotControl

/// Where the container really is, measured by ranging its left wall from a pass alongside
/// it (issue 18): the typed-in placement is only the first guess.
///
/// The range pair's beams meet the left wall square to the robot's heading. Each reading
/// plus the pose latched with it (G9.1) is a point on the wall. The wall is corrugated,
/// so the points scatter up to the corrugation's depth behind the outer face: the face is
/// the points' near envelope, found by fitting a line and keeping the points within
/// 12 mm of its nearest fifth, four times. The door and front ends are where each beam
/// starts and stops meeting the wall.
public struct ContainerRegistration: Sendable, Equatable, Codable {
    /// What was typed in.
    public var declared: ContainerPlacement
    /// What was measured: the door end's left corner and the left wall's heading; the
    /// declared size and number.
    public var measured: ContainerPlacement
    /// The left wall's length between the two ends, as ranged.
    public var measuredLengthMetres: Double
    /// Wall points kept for the face, and their scatter about it (1σ).
    public var pointsUsed: Int
    public var residualMetres: Double

    /// The ranged length over the declared size's: how far the odometry reads long (above
    /// 1) or short along the pass.
    public var odometryScale: Double { measuredLengthMetres / declared.size.lengthMetres }

    /// How far the measured pose lies from the declared one.
    public var offsetMetres: Double { hypot(measured.xMetres - declared.xMetres, measured.yMetres - declared.yMetres) }
    public var headingOffsetDegrees: Double { ScanExecutor.headingError(measured.headingDegrees, declared.headingDegrees) }

    /// Limits of the search and of agreement with the declared size.
    public struct Limits: Sendable, Equatable {
        /// The largest error of the first guess the pass is laid out for.
        public var guessOffsetMetres = 1.0
        public var guessHeadingDegrees = 5.0
        /// Clearance kept between the robot and the wall wherever the container lies within those errors.
        public var clearanceMetres = 0.8
        /// The ranged length may differ from the declared size's by this fraction. Not
        /// less: odometry that reads long or short stretches the ranged length with it (1 %
        /// is 12 cm on a 40 ft box), and 3 % still tells every two sizes apart (the
        /// closest, 40 and 45 ft, differ by 12 %).
        public var lengthToleranceFraction = 0.03
        /// Front and rear sensor may disagree by this much about the same wall.
        public var pairDisagreementMetres = 0.03
        public var passSpeedMetresPerSecond = 0.25
        /// The pass walks slower when the pair is polled less often, so that readings stay
        /// this close along the wall (the ends are found to half of it).
        public var readingSpacingMetres = 0.025

        public init() {}
    }

    /// The straight pass alongside the declared left wall, and how far from it.
    public struct Pass: Sendable, Equatable {
        public var start: (x: Double, y: Double)
        public var end: (x: Double, y: Double)
        public var headingDegrees: Double
        public var distanceFromWallMetres: Double

        public static func == (a: Pass, b: Pass) -> Bool {
            a.start == b.start && a.end == b.end && a.headingDegrees == b.headingDegrees && a.distanceFromWallMetres == b.distanceFromWallMetres
        }
    }

    /// A pass that clears the container and reaches past both its ends wherever it lies
    /// within the limits of the guess, and whose beams still reach its wall.
    public static func pass(for declared: ContainerPlacement, limits: Limits = Limits()) -> Pass {
        let length = declared.size.lengthMetres
        let swing = length * sin(limits.guessHeadingDegrees * .pi / 180)
        let distance = limits.clearanceMetres + limits.guessOffsetMetres + swing
        let reach = limits.guessOffsetMetres + 1.0
        let start = declared.yard(along: -reach, across: -distance)
        let end = declared.yard(along: length + reach, across: -distance)
        // Into -180...180, which a turn accepts (a declared 181° is -179°).
        var heading = declared.headingDegrees.truncatingRemainder(dividingBy: 360)
        if heading > 180 { heading -= 360 }
        if heading <= -180 { heading += 360 }
        return Pass(start: start, end: end, headingDegrees: heading, distanceFromWallMetres: distance)
    }

    /// The sensor ranges the pass needs: the far wall at the far end, with the guess's full error.
    public static func rangeNeeded(for declared: ContainerPlacement, limits: Limits = Limits()) -> Double {
        let p = pass(for: declared, limits: limits)
        return p.distanceFromWallMetres + limits.guessOffsetMetres + declared.size.lengthMetres * sin(limits.guessHeadingDegrees * .pi / 180)
    }
}

/// Why the container could not be registered, with the numbers.
public enum RegistrationFailure: Error, Equatable, CustomStringConvertible {
    case noRangePair
    case sensorFault
    case frozenSensor(String)
    case wallNotFound(String)
    case endNotFound(String)
    case pairDisagrees(frontMinusRearMetres: Double)
    case lengthMismatch(measuredMetres: Double, declared: ContainerSize, declaredMetres: Double)
    case interrupted(String)

    public var description: String {
        switch self {
        case .noRangePair:
            return "the chassis has no range pair (protocol 1.1 feature rangePair): the container's placement cannot be measured; scan on the declared placement or fit the sensors"
        case .sensorFault:
            return "the range pair reports a fault of its own (sensorFault): clean or check the sensors, then register again"
        case .frozenSensor(let which):
            return "the \(which) range sensor read the same distance all along a pass of several metres: it is frozen; check it"
        case .wallNotFound(let detail):
            return "the container's left wall was not found: \(detail). Check the declared placement (within 1 m and 5°) and that nothing stands between the robot and the wall"
        case .endNotFound(let detail):
            return "a container end was not found: \(detail). Check the declared placement and size"
        case .pairDisagrees(let d):
            return String(format: "the range pair disagrees: the front sensor puts the same wall %.1f cm %@ than the rear one (at most %.0f cm allowed); check the sensors' mounts and calibration",
                          abs(d) * 100, d > 0 ? "further" : "nearer", ContainerRegistration.Limits().pairDisagreementMetres * 100)
        case let .lengthMismatch(measured, size, declared):
            return String(format: "the container measures %.2f m along its left wall, but a %@ is %.2f m (±%.0f %% allowed): check the declared size, or whether this is the right container",
                          measured, size.rawValue, declared, ContainerRegistration.Limits().lengthToleranceFraction * 100)
        case .interrupted(let why):
            return "the registration pass was interrupted: \(why)"
        }
    }
}

extension ContainerRegistration {
    /// A wall point from one beam reading, in the declared container's frame.
    struct WallPoint {
        var along: Double
        var across: Double
        var front: Bool
    }

    /// Fits the left wall and its ends to the readings of a pass.
    ///
    /// The poses are odometry, the distances true metres: with odometry that reads long by
    /// a scale the wall would come out nearer the pass than it is in the robot's own frame
    /// (3 cm at 3 m for 1 %). The fit is therefore made again with the distances (and the
    /// sensors' offsets) in odometry metres, at the scale the ranged length gives, twice.
    public static func fit(declared: ContainerPlacement, samples: [RangeSample], geometry: RangePairGeometry,
                           limits: Limits = Limits()) throws(RegistrationFailure) -> ContainerRegistration {
        if samples.contains(where: \.sensorFault) { throw .sensorFault }
        try checkNotFrozen(samples)
        let declaredLength = declared.size.lengthMetres
        var result = try fit(declared: declared, samples: samples, geometry: geometry, limits: limits, scale: 1)
        for _ in 0..<2 {
            let scale = min(1.1, max(0.9, result.measuredLengthMetres / declaredLength))
            result = try fit(declared: declared, samples: samples, geometry: geometry, limits: limits, scale: scale)
        }
        guard abs(result.measuredLengthMetres - declaredLength) <= limits.lengthToleranceFraction * declaredLength else {
            throw .lengthMismatch(measuredMetres: result.measuredLengthMetres, declared: declared.size, declaredMetres: declaredLength)
        }
        return result
    }

    static func fit(declared: ContainerPlacement, samples: [RangeSample], geometry: RangePairGeometry, limits: Limits,
                    scale: Double) throws(RegistrationFailure) -> ContainerRegistration {
        let h = declared.headingDegrees * .pi / 180
        // A yard point into the declared frame (along from the doors, across to the right).
        func local(_ x: Double, _ y: Double) -> (Double, Double) {
            let dx = x - declared.xMetres, dy = y - declared.yMetres
            return (dx * cos(h) + dy * sin(h), dx * sin(h) - dy * cos(h))
        }
        // Each beam: its origin and direction in the declared frame, and the point it met.
        var beams: [(front: Bool, origin: (Double, Double), direction: (Double, Double), distance: Double?)] = []
        for s in samples {
            let r = s.headingDegrees * .pi / 180
            let right = (sin(r), -cos(r))
            for (front, forward, distance) in [(true, geometry.frontForwardMetres, s.frontMetres), (false, geometry.rearForwardMetres, s.rearMetres)] {
                let ox = s.xMetres + scale * (forward * cos(r) + geometry.rightMetres * right.0)
                let oy = s.yMetres + scale * (forward * sin(r) + geometry.rightMetres * right.1)
                let o = local(ox, oy)
                let tip = local(ox + right.0, oy + right.1)
                beams.append((front, o, (tip.0 - o.0, tip.1 - o.1), distance.map { $0 * scale }))
            }
        }
        let points = beams.compactMap { b -> WallPoint? in
            guard let d = b.distance else { return nil }
            return WallPoint(along: b.origin.0 + d * b.direction.0, across: b.origin.1 + d * b.direction.1, front: b.front)
        }
        // The wall lies within the guess's error of across = 0; anything else (a neighbour) is not it.
        let reach = limits.guessOffsetMetres + declared.size.lengthMetres * sin(limits.guessHeadingDegrees * .pi / 180) + 0.1
        let candidates = points.filter { abs($0.across) <= reach }
        guard candidates.count >= 20 else {
            throw .wallNotFound("\(candidates.count) of \(points.count) readings lie within \(String(format: "%.1f", reach)) m of the declared wall (20 needed)")
        }
        // The pair must agree about the same wall (a knocked or miscalibrated sensor): each
        // sensor's own face, compared mid-wall.
        let frontPoints = candidates.filter(\.front), rearPoints = candidates.filter { !$0.front }
        if frontPoints.count >= 20, rearPoints.count >= 20 {
            let mid = declared.size.lengthMetres / 2
            let f = envelope(frontPoints).line, r = envelope(rearPoints).line
            let difference = (f.0 + f.1 * mid) - (r.0 + r.1 * mid)
            if abs(difference) > limits.pairDisagreementMetres { throw .pairDisagrees(frontMinusRearMetres: difference) }
        }
        let (line, kept, residual) = envelope(candidates)
        guard residual <= 0.02 else {
            throw .wallNotFound(String(format: "the readings scatter %.1f cm about the best line (at most 2 cm for a wall)", residual * 100))
        }
        // The ends: where each beam, in the order of the pass, starts and stops meeting the wall.
        var doorEnds: [Double] = [], frontEnds: [Double] = []
        for front in [true, false] {
            let sequence = beams.filter { $0.front == front }
            func meets(_ i: Int) -> Bool {
                guard let d = sequence[i].distance else { return false }
                let b = sequence[i]
                let a = b.origin.0 + d * b.direction.0, c = b.origin.1 + d * b.direction.1
                return abs(c - (line.0 + line.1 * a)) <= 0.10
            }
            // Where a beam crosses the fitted line (along), met or not.
            func crossing(_ i: Int) -> Double {
                let b = sequence[i]
                let denominator = b.direction.1 - line.1 * b.direction.0
                let t = abs(denominator) > 1e-9 ? (line.0 + line.1 * b.origin.0 - b.origin.1) / denominator : 0
                return b.origin.0 + t * b.direction.0
            }
            guard let first = sequence.indices.first(where: meets), let last = sequence.indices.last(where: meets) else { continue }
            if first > 0 { doorEnds.append((crossing(first - 1) + crossing(first)) / 2) }
            if last < sequence.count - 1 { frontEnds.append((crossing(last) + crossing(last + 1)) / 2) }
        }
        guard !doorEnds.isEmpty else { throw .endNotFound("the beams met the wall from the pass's start: the door end lies before it") }
        guard !frontEnds.isEmpty else { throw .endNotFound("the beams met the wall to the pass's end: the front end lies beyond it, or the container is longer than a \(declared.size.rawValue)") }
        let a0 = doorEnds.reduce(0, +) / Double(doorEnds.count), a1 = frontEnds.reduce(0, +) / Double(frontEnds.count)
        let stretch = (1 + line.1 * line.1).squareRoot()
        let length = (a1 - a0) * stretch
        let declaredLength = declared.size.lengthMetres
        // The door corner, and the wall's heading, back in the yard.
        let corner = declared.yard(along: a0, across: line.0 + line.1 * a0)
        let direction = (cos(h) + line.1 * sin(h), sin(h) - line.1 * cos(h))
        var measured = declared
        measured.xMetres = corner.x
        measured.yMetres = corner.y
        measured.headingDegrees = atan2(direction.1, direction.0) * 180 / .pi
        measured.odometryScale = length / declaredLength
        return ContainerRegistration(declared: declared, measured: measured, measuredLengthMetres: length, pointsUsed: kept.count,
                                     residualMetres: residual)
    }

    /// The near envelope: across = c + m·along through the points nearest the robot.
    static func envelope(_ points: [WallPoint]) -> (line: (Double, Double), kept: [WallPoint], residual: Double) {
        var kept = points
        var line = lineFit(kept)
        // First drop what lies far from the bulk (a post, a grazing beam at an end).
        let median = (points.map { $0.across - (line.0 + line.1 * $0.along) }).sorted()[points.count / 2]
        kept = points.filter { abs($0.across - (line.0 + line.1 * $0.along) - median) <= 0.10 }
        for _ in 0..<4 {
            line = lineFit(kept)
            let offsets = kept.map { $0.across - (line.0 + line.1 * $0.along) }.sorted()
            let nearFifth = offsets[offsets.count / 5]
            let next = kept.filter { $0.across - (line.0 + line.1 * $0.along) <= nearFifth + 0.012 }
            if next.count < 10 { break }
            kept = next
        }
        line = lineFit(kept)
        let squares = kept.map { pow($0.across - (line.0 + line.1 * $0.along), 2) }.reduce(0, +)
        return (line, kept, (squares / Double(max(1, kept.count - 2))).squareRoot())
    }

    /// Least squares of across on along.
    static func lineFit(_ points: [WallPoint]) -> (Double, Double) {
        let n = Double(points.count)
        let ma = points.map(\.along).reduce(0, +) / n, mc = points.map(\.across).reduce(0, +) / n
        var saa = 0.0, sac = 0.0
        for p in points {
            saa += (p.along - ma) * (p.along - ma)
            sac += (p.along - ma) * (p.across - mc)
        }
        let slope = saa > 0 ? sac / saa : 0
        return (mc - slope * ma, slope)
    }

    /// A sensor whose every reading is the same over a pass of more than 2 m is frozen.
    static func checkNotFrozen(_ samples: [RangeSample]) throws(RegistrationFailure) {
        guard let first = samples.first, let last = samples.last,
              hypot(last.xMetres - first.xMetres, last.yMetres - first.yMetres) > 2 else { return }
        for (name, values) in [("front", samples.compactMap(\.frontMetres)), ("rear", samples.compactMap(\.rearMetres))] where values.count >= 20 {
            if Set(values).count == 1 { throw .frozenSensor(name) }
        }
    }
}
