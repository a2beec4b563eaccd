import Foundation
import Inspection
import RobotControl
import RobotSimulator
import RobotTesting
import Testing

/// A probe mounted off the robot's reference point (measurement review Q11): the plan puts
/// the probe, not the chassis, at the stand-off, and the robot where that puts the probe.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct ProbeMountTests {
    static let mount = ProbeMount(forwardMetres: 0.15, rightMetres: 0.45, upMetres: 0.05)

    @Test(arguments: [0.0, 30.0, -120.0])
    func everyStandPutsTheProbeOnItsPoint(containerHeading: Double) throws {
        let placement = ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 3, yMetres: -2,
                                           headingDegrees: containerHeading)
        let plan = ScanPlan(container: placement, profile: ProcedureProfile(), probeMount: Self.mount)
        let reference = ScanPlan(container: placement, profile: ProcedureProfile())
        #expect(plan.points.count == reference.points.count)
        for (point, old) in zip(plan.points, reference.points) {
            // The probe's point is where it always was: at the stand-off from the wall.
            #expect(point.xMetres == old.xMetres && point.yMetres == old.yMetres)
            let heading = try #require(point.headingDegrees)
            let offset = Self.mount.yardOffset(headingDegrees: heading)
            #expect(abs(point.standX + offset.dx - point.xMetres) < 1e-9 && abs(point.standY + offset.dy - point.yMetres) < 1e-9)
            // The reference point stands the probe's reach further out from the wall.
            let standOff = SourceLocalisationProbe.distanceOutside(plan: plan, x: point.standX, y: point.standY)
            #expect(abs(standOff - (plan.profile.standOffMetres + Self.mount.rightMetres)) < 1e-9, "point \(point.index) \(point.face)")
        }
        // Corners: on the reference point's path, out by the probe's reach.
        for waypoint in plan.waypoints {
            let outside = SourceLocalisationProbe.distanceOutside(plan: plan, x: waypoint.xMetres, y: waypoint.yMetres)
            #expect(abs(outside - (plan.profile.standOffMetres + Self.mount.rightMetres)) < 1e-9)
        }
    }

    @Test func aProbeAtTheReferencePointKeepsTheOldPlanAndItsRecord() throws {
        let placement = ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 0, yMetres: 0)
        let plan = ScanPlan(container: placement, profile: ProcedureProfile())
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        #expect(!json.contains("standXMetres") && !json.contains("probeMount"), "records of the idealised robot are unchanged")
        #expect(plan.points.allSatisfy { $0.standX == $0.xMetres && $0.headingDegrees == nil })
    }

    @Test func aMountThatWouldSweepIntoTheContainerIsRefused() throws {
        #expect(ProbeMount(forwardMetres: 0.4).problems(standOffMetres: 0.1).first?.contains("from the wall when the robot turns") == true)
        #expect(ProbeMount(forwardMetres: 0.25, rightMetres: 0.45).problems(standOffMetres: 0.1).count == 1, "0.037 m from the wall")
        #expect(ProbeMount(rightMetres: 2).problems(standOffMetres: 0.1).first == "probe.rightMetres 2.0 must be -0.05 to 1.5 m")
        #expect(Self.mount.problems(standOffMetres: 0.1).isEmpty)
    }

    /// From the background station to the first stand and from any stand to any other (a
    /// re-measure, a resumed scan), every stop of the route is one where the robot may
    /// turn in place: the circle the probe sweeps stays clear of the container.
    @Test func routesKeepTheProbesCircleClearOfTheContainer() throws {
        let placement = ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 0, yMetres: 0)
        let plan = ScanPlan(container: placement, profile: ProcedureProfile(), probeMount: Self.mount)
        let reach = Self.mount.reachMetres
        var starts = [(x: plan.backgroundX, y: plan.backgroundY)]
        starts += stride(from: 0, to: plan.points.count, by: 7).map { (x: plan.points[$0].standX, y: plan.points[$0].standY) }
        for start in starts {
            for target in stride(from: 3, to: plan.points.count, by: 11).map({ plan.points[$0] }) {
                let stops = ContainerRoute.stops(from: start, via: [], to: (target.standX, target.standY), container: placement,
                                                 standOffMetres: plan.robotStandOffMetres, zones: [],
                                                 marginMetres: Self.mount.routeMarginMetres)
                let path = [start] + stops + [(x: target.standX, y: target.standY)]
                for (a, b) in zip(path, path.dropFirst()) {
                    for k in 0...50 {
                        let t = Double(k) / 50
                        let x = a.x + (b.x - a.x) * t, y = a.y + (b.y - a.y) * t
                        let clear = SourceLocalisationProbe.distanceOutside(plan: plan, x: x, y: y, euclidean: true)
                        #expect(clear >= reach + 0.02, "(\(x), \(y)) is \(clear) m from the container, the probe reaches \(reach) m")
                    }
                }
            }
        }
        // The straight way from the station to the first stand would swing the probe into
        // the door corner; the route goes through the corner waypoint instead.
        let first = plan.points[0]
        let direct = ContainerRoute.stops(from: (plan.backgroundX, plan.backgroundY), via: [], to: (first.standX, first.standY),
                                          container: placement, standOffMetres: plan.robotStandOffMetres, zones: [])
        let routed = ContainerRoute.stops(from: (plan.backgroundX, plan.backgroundY), via: [], to: (first.standX, first.standY),
                                          container: placement, standOffMetres: plan.robotStandOffMetres, zones: [],
                                          marginMetres: Self.mount.routeMarginMetres)
        #expect(direct.isEmpty && routed.count == 1)
    }

    /// The whole chain in virtual time: a simulated robot with its probe 0.45 m to its
    /// right, a Cs-137 source behind the left wall. Every reading is taken with the probe
    /// (simulator truth) on its planned point, and the source is found.
    @Test func aScanWithAnOffsetProbeMeasuresWhereThePlanSaysAndFindsTheSource() async throws {
        var scenario = try Scenario.load(path: ScanTests.root.appendingPathComponent("hil/scenarios/cs137-40ft.yaml").path)
        scenario.startLiftMetres = 0.4
        scenario.settings.probeForwardMetres = Self.mount.forwardMetres
        scenario.settings.probeRightMetres = Self.mount.rightMetres
        scenario.settings.probeUpMetres = Self.mount.upMetres
        var configuration = ControlConfiguration()
        configuration.keepOutZones = [KeepOutZone(minX: -0.05, minY: -2.488, maxX: 12.242, maxY: 0.05)]
        let robot = try await VirtualRobot(scenario: scenario, configuration: configuration)
        robot.startRunning(idleWallSeconds: 0.2)
        defer { robot.stopFreeRunning() }
        let profile = try ProcedureProfile.load(path: ScanTests.root.appendingPathComponent("profiles/demo.yaml").path)
        let plan = ScanPlan(container: ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 0, yMetres: 0),
                            profile: profile, probeMount: Self.mount)
        let record = TruthRecord(model: robot.model)
        let executor = try robot.executor(plan: plan, record: record)
        let verdict = try await executor.run(scanDate: 20261207)
        #expect(verdict.outcome == .exceeds)
        let misses = record.probeAt.filter { index, truth in
            let point = plan.points[index]
            return hypot(truth.probeX - point.xMetres, truth.probeY - point.yMetres) > 0.02 || abs(truth.probeZ - point.heightMetres) > 0.01
        }
        #expect(record.probeAt.count == plan.points.count)
        #expect(misses.isEmpty, "probe off its point at \(misses.map { "\($0.key): (\($0.value.probeX), \($0.value.probeY), \($0.value.probeZ))" })")
        let estimate = try #require(SourceLocalisation.estimate(plan: plan, verdict: verdict))
        #expect(estimate.face == .left)
        #expect(abs(estimate.alongMetres - 7.5) < 1.0, "\(estimate)")
    }
}

/// Distances from the container's walls, for checking plans (outside the footprint).
enum SourceLocalisationProbe {
    static func distanceOutside(plan: ScanPlan, x: Double, y: Double, euclidean: Bool = false) -> Double {
        let c = plan.container
        let h = c.headingDegrees * .pi / 180
        let dx = x - c.xMetres, dy = y - c.yMetres
        let along = dx * cos(h) + dy * sin(h), across = dx * sin(h) - dy * cos(h)
        let outsideAlong = max(-along, along - c.size.lengthMetres, 0)
        let outsideAcross = max(-across, across - c.size.widthMetres, 0)
        // A stand beside a face is outside in one direction only; a corner in both, equally.
        return euclidean ? hypot(outsideAlong, outsideAcross) : max(outsideAlong, outsideAcross)
    }
}

/// A record that also notes where the simulator's probe truly was when each point's
/// first reading was stored (the robot stands still while it measures).
final class TruthRecord: ScanRecord, @unchecked Sendable {
    let inner = InMemoryScanRecord()
    let model: FirmwareModel
    private let lock = NSLock()
    private var truths: [Int: FirmwareModel.Truth] = [:]

    init(model: FirmwareModel) { self.model = model }

    var probeAt: [Int: FirmwareModel.Truth] { lock.withLock { truths } }

    func recordedReadings() async throws -> [RecordedReading] { inner.recordedReadings() }

    func append(_ reading: DoseReading, kind: RecordedReading.Kind, pointIndex: Int, ordinal: Int, set: Int) async throws {
        if kind == .point {
            let truth = model.truth()
            lock.withLock { if truths[pointIndex] == nil { truths[pointIndex] = truth } }
        }
        inner.append(reading, kind: kind, pointIndex: pointIndex, ordinal: ordinal, set: set)
    }
}
