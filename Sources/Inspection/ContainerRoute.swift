import Foundation
import RobotControl

/// The way from where the robot stands to its next stand position, round the container
/// and clear of the keep-out zones: what a resumed scan needs when the robot is not where
/// the scan left it (an officer drove it to the far side, to a corner, or a push left it
/// inside the keep-out margin).
///
/// The plan's own corner waypoints are used when the robot can walk them; otherwise the
/// shortest way through the container's corners (at the stand-off, as the plan's are) is
/// found on their visibility graph. A robot inside the footprint's margin first steps
/// straight out from the nearest wall. With a probe mounted off the reference point the
/// margin is the probe's reach (and 3 cm), so the robot can turn at any stop and the probe
/// sweeps clear of the walls.
public enum ContainerRoute {
    /// The stops to walk before the target (the target itself not included).
    public static func stops(from here: (x: Double, y: Double), via waypoints: [(x: Double, y: Double)], to target: (x: Double, y: Double),
                             container: ContainerPlacement, standOffMetres: Double, zones: [KeepOutZone],
                             marginMetres: Double = 0.05) -> [(x: Double, y: Double)] {
        let geometry = Geometry(container: container, zones: zones, marginMetres: marginMetres)
        let planned = waypoints + [target]
        // The plan's way, from the last of its stops the robot can reach in a straight line.
        for i in planned.indices.reversed() where geometry.clear(here, planned[i]) {
            let rest = Array(planned[i...])
            if zip(rest, rest.dropFirst()).allSatisfy({ geometry.clear($0, $1) }) { return Array(rest.dropLast()) }
        }
        var start = here
        var prefix: [(x: Double, y: Double)] = []
        if geometry.insideFootprint(here) {
            let out = geometry.stepOut(from: here, clearance: max(standOffMetres, 0.1))
            prefix.append(out)
            start = out
        }
        let clearance = max(standOffMetres, 0.1)
        let L = container.size.lengthMetres, W = container.size.widthMetres
        let corners = [(-clearance, -clearance), (L + clearance, -clearance), (L + clearance, W + clearance), (-clearance, W + clearance)]
            .map { container.yard(along: $0.0, across: $0.1) }
        let nodes = [start] + corners + [target]
        // Dijkstra on six nodes.
        var distance = [Double](repeating: .infinity, count: nodes.count)
        var previous = [Int?](repeating: nil, count: nodes.count)
        var done = [Bool](repeating: false, count: nodes.count)
        distance[0] = 0
        for _ in nodes.indices {
            guard let u = nodes.indices.filter({ !done[$0] }).min(by: { distance[$0] < distance[$1] }), distance[u].isFinite else { break }
            done[u] = true
            for v in nodes.indices where !done[v] && geometry.clear(nodes[u], nodes[v]) {
                let d = distance[u] + hypot(nodes[v].x - nodes[u].x, nodes[v].y - nodes[u].y)
                if d < distance[v] { distance[v] = d; previous[v] = u }
            }
        }
        guard distance[nodes.count - 1].isFinite else { return prefix + Array(planned.dropLast()) }
        var path: [Int] = []
        var at: Int? = nodes.count - 1
        while let node = at, node != 0 { path.append(node); at = previous[node] }
        let via = path.reversed().dropLast().map { nodes[$0] }
        return prefix + via
    }

    struct Geometry {
        let container: ContainerPlacement
        let zones: [KeepOutZone]
        /// 5 cm, or more when a probe mounted off the reference point reaches out
        /// (`ProbeMount.routeMarginMetres`).
        var marginMetres = 0.05
        /// The container's footprint grown by the margin, in its own frame (along, across).
        var footprint: KeepOutZone {
            KeepOutZone(minX: -marginMetres, minY: -marginMetres, maxX: container.size.lengthMetres + marginMetres,
                        maxY: container.size.widthMetres + marginMetres)
        }

        func local(_ p: (x: Double, y: Double)) -> (along: Double, across: Double) {
            container.local(x: p.x, y: p.y)
        }

        func insideFootprint(_ p: (x: Double, y: Double)) -> Bool {
            let l = local(p)
            return footprint.contains(x: l.along, y: l.across) || zones.contains { $0.contains(x: p.x, y: p.y) }
        }

        /// A segment clear of the footprint and of every zone (a start inside the
        /// footprint's margin may leave it: see `stepOut`).
        func clear(_ a: (x: Double, y: Double), _ b: (x: Double, y: Double)) -> Bool {
            let la = local(a), lb = local(b)
            if footprint.intersects(fromX: la.along, fromY: la.across, toX: lb.along, toY: lb.across) { return false }
            return !zones.contains { $0.intersects(fromX: a.x, fromY: a.y, toX: b.x, toY: b.y) }
        }

        /// Straight out from the nearest wall to `clearance` beyond the footprint's margin.
        func stepOut(from p: (x: Double, y: Double), clearance: Double) -> (x: Double, y: Double) {
            let l = local(p)
            let f = footprint
            let options: [(distance: Double, along: Double, across: Double)] = [
                (l.along - f.minX, f.minX - clearance, l.across), (f.maxX - l.along, f.maxX + clearance, l.across),
                (l.across - f.minY, l.along, f.minY - clearance), (f.maxY - l.across, l.along, f.maxY + clearance),
            ]
            let nearest = options.min { $0.distance < $1.distance } ?? options[0]
            return container.yard(along: nearest.along, across: nearest.across)
        }
    }
}
