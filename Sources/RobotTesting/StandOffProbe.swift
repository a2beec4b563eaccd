import Foundation
import Inspection
import RobotSimulator

/// A scan record that also notes, for every point reading measured standing, how far the
/// probe truly stood from the wall it measured (the simulator's truth, at the moment the
/// reading is kept: the robot stands at the point then), and, sampled at every step, how
/// far it was while the robot drove along a wall (`sampleWhileMoving`). For the stand-off
/// figures of issue 18.
public final class StandOffProbe: ScanRecord, @unchecked Sendable {
    public struct Sample: Sendable {
        public var pointIndex: Int
        public var face: ProcedureProfile.Face
        /// The probe's true distance from the wall's outer face, metres.
        public var standOffMetres: Double
    }

    private let inner: ScanRecord
    private let model: FirmwareModel
    private let plan: ScanPlan
    private let lock = NSLock()
    private var kept: [Sample] = []
    private var keptMoving: [ProcedureProfile.Face: [Double]] = [:]

    private let rowHeights: [Double]

    public init(wrapping inner: ScanRecord = InMemoryScanRecord(), model: FirmwareModel, plan: ScanPlan) {
        self.inner = inner
        self.model = model
        self.plan = plan
        rowHeights = Array(Set(plan.points.map(\.heightMetres)))
    }

    public var samples: [Sample] { lock.withLock { kept } }
    /// The probe's true distance from the wall it drove along, per face, sampled by
    /// `sampleWhileMoving()`.
    public var movingSamples: [ProcedureProfile.Face: [Double]] { lock.withLock { keptMoving } }

    /// Notes the probe's distance from a wall while the chassis drives along it (faster
    /// than 5 cm/s, heading within 5° of the wall, the probe within 0.5 m of it and beside
    /// it, not beyond its ends) with the lift still at one of the plan's heights: a moving
    /// survey's rows. Call it at every step (`VirtualRobot.afterEachStep`).
    public func sampleWhileMoving() {
        guard let container = model.radiationField.containers.first else { return }
        let t = model.truth()
        guard abs(t.speedMetresPerSecond) > 0.05, t.liftSpeedMetresPerSecond == 0,
              rowHeights.contains(where: { abs($0 - t.probeZ) < 0.02 }) else { return }
        let (along, across, _) = container.local(t.probeX, t.probeY, 0)
        let length = container.type.lengthMetres, width = container.type.widthMetres
        var relative = (t.headingDegrees - container.headingDegrees).truncatingRemainder(dividingBy: 180)
        if relative < 0 { relative += 180 }
        let alongTheSides = min(relative, 180 - relative) < 5, alongTheEnds = abs(relative - 90) < 5
        let candidates: [(ProcedureProfile.Face, Double, Bool)] = [
            (.left, -across, alongTheSides && along >= 0 && along <= length),
            (.right, across - width, alongTheSides && along >= 0 && along <= length),
            (.door, -along, alongTheEnds && across >= 0 && across <= width),
            (.front, along - length, alongTheEnds && across >= 0 && across <= width),
        ]
        for (face, distance, beside) in candidates where beside && distance > 0 && distance < 0.5 {
            lock.withLock { keptMoving[face, default: []].append(distance) }
        }
    }

    public func recordedReadings() async throws -> [RecordedReading] { try await inner.recordedReadings() }

    public func append(_ reading: DoseReading, kind: RecordedReading.Kind, pointIndex: Int, ordinal: Int, set: Int) async throws {
        // A moving survey's cell is kept after its row, where the probe no longer is: its
        // stand-off is the one `sampleWhileMoving` notes along the row.
        let countedWhileMoving = plan.profile.movingSurvey && kind == .point && reading.seconds < 2.5
        if kind != .background, !countedWhileMoving, plan.points.indices.contains(pointIndex), let container = model.radiationField.containers.first {
            let face = plan.points[pointIndex].face
            let t = model.truth()
            let (along, across, _) = container.local(t.probeX, t.probeY, 0)
            let distance: Double
            switch face {
            case .left: distance = -across
            case .right: distance = across - container.type.widthMetres
            case .door: distance = -along
            case .front: distance = along - container.type.lengthMetres
            }
            lock.withLock { kept.append(Sample(pointIndex: pointIndex, face: face, standOffMetres: distance)) }
        }
        try await inner.append(reading, kind: kind, pointIndex: pointIndex, ordinal: ordinal, set: set)
    }
}
