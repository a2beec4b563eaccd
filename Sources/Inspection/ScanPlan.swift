import Foundation

/// Where the container stands: its door-end left corner (seen from the doors) in the
/// yard frame, and the direction of its long axis from the doors.
public struct ContainerPlacement: Sendable, Equatable, Codable {
    public var number: ContainerNumber
    public var size: ContainerSize
    public var xMetres: Double
    public var yMetres: Double
    public var headingDegrees: Double

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
        let h = headingDegrees * .pi / 180
        return (xMetres + along * cos(h) + across * sin(h), yMetres + along * sin(h) - across * cos(h))
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
    public var heightMetres: Double
    /// Where the robot (and the probe, at the stand-off) stands.
    public var xMetres: Double
    public var yMetres: Double
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

    public init(container: ContainerPlacement, profile: ProcedureProfile) {
        self.container = container
        self.profile = profile
        let size = container.size
        let s = profile.standOffMetres
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
        for face in [ProcedureProfile.Face.left, .front, .right, .door] {
            let length = face == .left || face == .right ? size.lengthMetres : size.widthMetres
            let columns = max(1, Int((length / profile.maxColumnSpacingMetres).rounded(.up)))
            let spacing = length / Double(columns)
            // Corner waypoint before the face, outside both walls at the stand-off.
            let corner: (along: Double, across: Double)
            switch face {
            case .left: corner = (-s, -s)
            case .front: corner = (size.lengthMetres + s, -s)
            case .right: corner = (size.lengthMetres + s, size.widthMetres + s)
            case .door: corner = (-s, size.widthMetres + s)
            }
            pendingCorners.append(container.yard(along: corner.along, across: corner.across))
            guard profile.faces.contains(face) else { continue }
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
                // Serpentine: up one column, down the next, so the lift never travels empty.
                let rows = goingUp ? Array(heights.indices) : Array(heights.indices.reversed())
                for row in rows {
                    points.append(PlanPoint(index: points.count, face: face, column: column, row: row,
                                            positionAlongFaceMetres: t, heightMetres: heights[row], xMetres: p.x, yMetres: p.y))
                }
                goingUp.toggle()
            }
        }
        self.points = points
        self.waypoints = waypoints
    }

    /// Points per face.
    public func count(on face: ProcedureProfile.Face) -> Int {
        points.filter { $0.face == face }.count
    }
}
