import Foundation
import Inspection
import RobotSimulator

/// A scan record that also notes, for every point reading, how far the probe truly stood
/// from the wall it measured (the simulator's truth, at the moment the reading is kept:
/// the robot stands at the point then). For the stand-off figures of issue 18.
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

    public init(wrapping inner: ScanRecord = InMemoryScanRecord(), model: FirmwareModel, plan: ScanPlan) {
        self.inner = inner
        self.model = model
        self.plan = plan
    }

    public var samples: [Sample] { lock.withLock { kept } }

    public func recordedReadings() async throws -> [RecordedReading] { try await inner.recordedReadings() }

    public func append(_ reading: DoseReading, kind: RecordedReading.Kind, pointIndex: Int, ordinal: Int, set: Int) async throws {
        if kind != .background, plan.points.indices.contains(pointIndex), let container = model.radiationField.containers.first {
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
