import Foundation

/// Where the container stands: its door-end left corner (seen from the doors) in the
/// yard frame, and the direction of its long axis from the doors.
public struct ContainerPlacement: Sendable, Equatable, Codable {
    public var number: ContainerNumber
    public var size: ContainerSize
    public var xMetres: Double
    public var yMetres: Double
    public var headingDegrees: Double
    /// How many metres of the robot's odometry a metre of the container is, as the
    /// registration ranged it (its length over the declared size's); nil is 1. The robot
    /// goes where its odometry says: a plan laid out in that frame puts the probe on the
    /// real container even when the odometry reads 1 % long. Only on registered plans.
    public var odometryScale: Double?

    public init(number: ContainerNumber, size: ContainerSize, xMetres: Double, yMetres: Double, headingDegrees: Double = 0) {
        self.number = number
        self.size = size
        self.xMetres = xMetres
        self.yMetres = yMetres
        self.headingDegrees = headingDegrees
    }

    /// Yard position of a point `along` the container from the doors and `across` it
    /// from the left wall (negative is outside the left wall).
    public func yard(along: Double, across: Double) -> (x: Double, y: Double) {
        let h = headingDegrees * .pi / 180, s = odometryScale ?? 1
        return (xMetres + s * (along * cos(h) + across * sin(h)), yMetres + s * (along * sin(h) - across * cos(h)))
    }

    /// A yard point in the container's frame (the inverse of `yard`), metres of the container.
    public func local(x: Double, y: Double) -> (along: Double, across: Double) {
        let h = headingDegrees * .pi / 180, s = odometryScale ?? 1
        let dx = x - xMetres, dy = y - yMetres
        return ((dx * cos(h) + dy * sin(h)) / s, (dx * sin(h) - dy * cos(h)) / s)
    }
}

/// One grid point of a scan: which face, column and row, and where the probe goes.
public struct PlanPoint: Sendable, Equatable, Codable {
    public var index: Int
    public var face: ProcedureProfile.Face
    /// Column from the face's start in the robot's travel direction, and row from the bottom.
    public var column: Int
    public var row: Int
    /// Distance along the face from its left edge (seen from outside), metres.
    public var positionAlongFaceMetres: Double
    /// Where the probe goes: at the stand-off from the wall, this high.
    public var heightMetres: Double
    public var xMetres: Double
    public var yMetres: Double
    /// Where the robot's reference point stands, and its heading (degrees, the face's
    /// direction of travel), for a probe mounted off the reference point; absent when the
    /// probe is at the reference point (and on plans recorded before mounts were known).
    public var standXMetres: Double?
    public var standYMetres: Double?
    public var headingDegrees: Double?

    /// The robot's stand position: the reference point's, or the probe's when they coincide.
    public var standX: Double { standXMetres ?? xMetres }
    public var standY: Double { standYMetres ?? yMetres }
}

/// A waypoint the robot passes through without measuring (corners of the path).
public struct Waypoint: Sendable, Equatable, Codable {
    public var beforePoint: Int
    public var xMetres: Double
    public var yMetres: Double
}

/// The whole survey of one container: the background station, the ordered grid
/// points on each face, and the corner waypoints between faces.
public struct ScanPlan: Sendable, Equatable, Codable {
    public var container: ContainerPlacement
    public var profile: ProcedureProfile
    public var backgroundX: Double
    public var backgroundY: Double
    public var points: [PlanPoint]
    public var waypoints: [Waypoint]
    /// Corners to pass on the way back to the background station after the survey (the
    /// shorter way round the container).
    public var returnWaypoints: [Waypoint]
    /// Where the probe sits on the robot; nil when at the reference point. Waypoints are
    /// the reference point's; the background station is where the robot stands.
    public var probeMount: ProbeMount?
    /// How the container's placement was measured before planning (issue 18); nil when
    /// the plan is on the declared placement (and on plans recorded before registration).
    public var registration: ContainerRegistration?

    /// The stand-off of the robot's reference point from the walls on its path.
    public var robotStandOffMetres: Double { profile.standOffMetres + (probeMount?.rightMetres ?? 0) }

    /// A plan on the container as the range pair measured it, with the measurement kept.
    public init(registration: ContainerRegistration, profile: ProcedureProfile, probeMount: ProbeMount = .atReferencePoint) {
        self.init(container: registration.measured, profile: profile, probeMount: probeMount)
        self.registration = registration
    }

    public init(container: ContainerPlacement, profile: ProcedureProfile, probeMount: ProbeMount = .atReferencePoint) {
        self.container = container
        self.profile = profile
        self.probeMount = probeMount == .atReferencePoint ? nil : probeMount
        let size = container.size
        let s = profile.standOffMetres
        // The reference point's path runs this much further out than the probe's.
        let r = probeMount.rightMetres
        let faceHeading: [ProcedureProfile.Face: Double] = [.left: 0, .front: -90, .right: 180, .door: 90]
        let background = container.yard(along: -profile.backgroundDistanceMetres, across: size.widthMetres / 2)
        backgroundX = background.x
        backgroundY = background.y
        let heights = profile.heightsMetres.filter { $0 <= size.heightMetres }
        var points: [PlanPoint] = []
        var waypoints: [Waypoint] = []
        // Once round the container: left wall (doors to front), front end, right wall
        // (front to doors), door end. Each face is walked in one direction only.
        var goingUp = true
        // Corners of faces not surveyed still have to be walked round.
        var pendingCorners: [(x: Double, y: Double)] = []
        var allCorners: [(x: Double, y: Double)] = []
        var lastFace = 0
        for (faceIndex, face) in [ProcedureProfile.Face.left, .front, .right, .door].enumerated() {
            let length = face == .left || face == .right ? size.lengthMetres : size.widthMetres
            let columns = max(1, Int((length / profile.maxColumnSpacingMetres).rounded(.up)))
            let spacing = length / Double(columns)
            // Corner waypoint before the face, outside both walls at the stand-off.
            let corner: (along: Double, across: Double)
            let o = s + r
            switch face {
            case .left: corner = (-o, -o)
            case .front: corner = (size.lengthMetres + o, -o)
            case .right: corner = (size.lengthMetres + o, size.widthMetres + o)
            case .door: corner = (-o, size.widthMetres + o)
            }
            pendingCorners.append(container.yard(along: corner.along, across: corner.across))
            allCorners.append(container.yard(along: corner.along, across: corner.across))
            guard profile.faces.contains(face) else { continue }
            lastFace = faceIndex
            for c in pendingCorners {
                waypoints.append(Waypoint(beforePoint: points.count, xMetres: c.x, yMetres: c.y))
            }
            pendingCorners.removeAll()
            for column in 0..<columns {
                let t = (Double(column) + 0.5) * spacing
                let local: (along: Double, across: Double)
                switch face {
                case .left: local = (t, -s)
                case .front: local = (size.lengthMetres + s, t)
                case .right: local = (size.lengthMetres - t, size.widthMetres + s)
                case .door: local = (-s, size.widthMetres - t)
                }
                let p = container.yard(along: local.along, across: local.across)
                // The robot faces along the face (the container on its right) with its
                // reference point where the mount puts the probe on the point.
                let heading = container.headingDegrees + (faceHeading[face] ?? 0)
                let offset = probeMount.yardOffset(headingDegrees: heading)
                let mounted = probeMount != .atReferencePoint
                // Serpentine: up one column, down the next, so the lift never travels empty.
                let rows = goingUp ? Array(heights.indices) : Array(heights.indices.reversed())
                for row in rows {
                    points.append(PlanPoint(index: points.count, face: face, column: column, row: row,
                                            positionAlongFaceMetres: t, heightMetres: heights[row], xMetres: p.x, yMetres: p.y,
                                            standXMetres: mounted ? p.x - offset.dx : nil, standYMetres: mounted ? p.y - offset.dy : nil,
                                            headingDegrees: mounted ? Self.normalised(heading) : nil))
                }
                goingUp.toggle()
            }
        }
        self.points = points
        self.waypoints = waypoints
        // Back to the station in front of the doors: onwards through the corners of the
        // faces after the last one surveyed, or back through those before it, whichever
        // is shorter. Corner k stands before face k in the loop left, front, right, door.
        let end = points.last.map { (x: $0.standX, y: $0.standY) } ?? (x: background.x, y: background.y)
        let onwards = Array(allCorners[(lastFace + 1)...])
        let back = Array(allCorners[0...lastFace].reversed())
        func length(_ route: [(x: Double, y: Double)]) -> Double {
            var total = 0.0
            var at = end
            for p in route + [(x: background.x, y: background.y)] {
                total += hypot(p.x - at.x, p.y - at.y)
                at = p
            }
            return total
        }
        let route = length(onwards) <= length(back) ? onwards : back
        returnWaypoints = route.map { Waypoint(beforePoint: points.count, xMetres: $0.x, yMetres: $0.y) }
    }

    /// A heading in -180...180 degrees.
    static func normalised(_ degrees: Double) -> Double {
        var h = degrees.truncatingRemainder(dividingBy: 360)
        if h > 180 { h -= 360 }
        if h <= -180 { h += 360 }
        return h
    }

    /// Points per face.
    public func count(on face: ProcedureProfile.Face) -> Int {
        points.filter { $0.face == face }.count
    }
}

extension ScanPlan {
    /// A top view of the plan as SVG: the container, the background station, the path
    /// and every stand position (numbered by its first point), for checking before a run.
    public func svg(pixelsPerMetre scale: Double = 40) -> String {
        let size = container.size
        var xs = [backgroundX] + points.map(\.xMetres) + waypoints.map(\.xMetres)
        var ys = [backgroundY] + points.map(\.yMetres) + waypoints.map(\.yMetres)
        for (a, c) in [(0.0, 0.0), (size.lengthMetres, 0), (0, size.widthMetres), (size.lengthMetres, size.widthMetres)] {
            let p = container.yard(along: a, across: c)
            xs.append(p.x)
            ys.append(p.y)
        }
        let minX = (xs.min() ?? 0) - 1, maxX = (xs.max() ?? 0) + 1
        let minY = (ys.min() ?? 0) - 1, maxY = (ys.max() ?? 0) + 1
        // SVG's y grows downwards; the yard's grows upwards.
        func px(_ x: Double) -> String { String(format: "%.1f", (x - minX) * scale) }
        func py(_ y: Double) -> String { String(format: "%.1f", (maxY - y) * scale) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int((maxX - minX) * scale))\" height=\"\(Int((maxY - minY) * scale))\" font-family=\"sans-serif\" font-size=\"10\">"
        let corners = [(0.0, 0.0), (size.lengthMetres, 0), (size.lengthMetres, size.widthMetres), (0, size.widthMetres)]
            .map { container.yard(along: $0.0, across: $0.1) }
        svg += "<polygon points=\"" + corners.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ") + "\" fill=\"#c9d6e3\" stroke=\"#345\"/>"
        let doors = container.yard(along: 0, across: size.widthMetres / 2)
        svg += "<text x=\"\(px(doors.x))\" y=\"\(py(doors.y))\" text-anchor=\"end\">doors </text>"
        svg += "<text x=\"\(px(corners[0].x))\" y=\"\(py(corners[0].y) )\" dy=\"-4\">\(container.number.text) \(size.rawValue)</text>"
        // The path: background station, then every stand and corner in order.
        var path: [(Double, Double)] = [(backgroundX, backgroundY)]
        for point in points {
            for w in waypoints where w.beforePoint == point.index { path.append((w.xMetres, w.yMetres)) }
            if path.last.map({ hypot($0.0 - point.standX, $0.1 - point.standY) > 0.004 }) ?? true {
                path.append((point.standX, point.standY))
            }
        }
        svg += "<polyline points=\"" + path.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ") + "\" fill=\"none\" stroke=\"#888\" stroke-dasharray=\"3,2\"/>"
        svg += "<circle cx=\"\(px(backgroundX))\" cy=\"\(py(backgroundY))\" r=\"5\" fill=\"#2a7\"/><text x=\"\(px(backgroundX))\" y=\"\(py(backgroundY))\" dx=\"7\">background</text>"
        var lastStand: (Double, Double)?
        for point in points {
            if let last = lastStand, hypot(last.0 - point.xMetres, last.1 - point.yMetres) < 0.004 { continue }
            lastStand = (point.xMetres, point.yMetres)
            svg += "<circle cx=\"\(px(point.xMetres))\" cy=\"\(py(point.yMetres))\" r=\"3\" fill=\"#c33\"><title>points from \(point.index), \(point.face.rawValue) column \(point.column)</title></circle>"
        }
        return svg + "</svg>\n"
    }
}
