import Foundation

/// A scan as an ANSI N42.42 document: the format radiation instruments, portal monitors
/// and national nuclear-security systems exchange (readers: SpecUtils, InterSpec, Cambio).
///
/// **Edition and namespace.** N42.42-2011 (published 2012), namespace
/// `http://physics.nist.gov/N42/2011/N42`: the edition whose schema NIST publishes and
/// the one SpecUtils and OSCAR read and write. The 2006 edition has no dose-rate or
/// relative-location elements, and the 2020 revision kept the 2011 namespace.
///
/// **What goes where** (docs/api.md, "N42.42 export", has the full mapping):
/// - the robot as `RadInstrumentInformation` (class `Mobile System`), each unit's firmware
///   as a `RadInstrumentVersion`, the calibration, dead time and last check-source test
///   as characteristics; the probe as one gamma `RadDetectorInformation`;
/// - the container as `RadItemInformation`, the origin of every position;
/// - every reading as a `RadMeasurement`: the station background as `Background`, each
///   grid point and re-measure as `Foreground`, with its start, real time, counts, the
///   calibrated dose rate in µSv/h (`DoseRateValue`) and where the probe stood
///   (`RelativeLocation` to the container);
/// - the verdict as `AnalysisResults` with `DoseAnalysisResults`, and a `RadAlarm` when it
///   is anomalous or exceeds the limit; the reading chain's head and the signed seal as
///   remarks and characteristics, so a receiver can check the record against the robot.
///
/// The counts also go in as a one-channel `Spectrum`: the probe counts every pulse in
/// one energy window, and readers that build their measurements from spectra (SpecUtils
/// skips gamma `GrossCounts`) would otherwise find no measurement at all.
public struct ScanExport: Sendable {
    /// Whether the scan reached a verdict. An export of an unfinished, aborted or refused
    /// scan writes every reading it has and says so in the document.
    public enum Completeness: Sendable, Equatable {
        case complete
        case incomplete(status: String)
    }

    public var scanId: String
    public var robotId: String
    public var firmware: [String: String]
    public var officer: String
    public var startedAt: String
    public var finishedAt: String
    public var plan: ScanPlan
    public var instrument: InstrumentRecord
    /// The readings that count (as in the report: the background, one set a point, the
    /// re-measures), in the order taken.
    public var readings: [RecordedReading]
    /// Readings kept in the record but not counted (sets cut short, earlier rounds): not
    /// exported, counted in a remark.
    public var supersededReadings: Int
    public var verdict: Verdict?
    public var hotSpots: [SourceEstimate]
    public var chainHash: String
    public var seal: RecordSeal?
    public var completeness: Completeness

    public init(scanId: String, robotId: String, firmware: [String: String], officer: String, startedAt: String, finishedAt: String,
                plan: ScanPlan, instrument: InstrumentRecord, readings: [RecordedReading], supersededReadings: Int, verdict: Verdict?,
                hotSpots: [SourceEstimate], chainHash: String, seal: RecordSeal?, completeness: Completeness) {
        self.supersededReadings = supersededReadings
        self.scanId = scanId
        self.robotId = robotId
        self.firmware = firmware
        self.officer = officer
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.plan = plan
        self.instrument = instrument
        self.readings = readings
        self.verdict = verdict
        self.hotSpots = hotSpots
        self.chainHash = chainHash
        self.seal = seal
        self.completeness = completeness
    }

    /// The namespace written (N42.42-2011).
    public static let namespace = "http://physics.nist.gov/N42/2011/N42"

    /// Where a reading was taken, in the container's frame: metres `along` its long axis
    /// from the door end, `across` from the left wall (positive towards the right wall),
    /// `height` above the ground; the origin is the door-end left corner at ground level.
    public struct ContainerFramePosition: Sendable, Equatable {
        public var alongMetres: Double
        public var acrossMetres: Double
        public var heightMetres: Double

        /// N42's polar form: azimuth 0° straight along the container from the doors,
        /// positive to the right; inclination positive upwards; distance in metres.
        public var azimuthDegrees: Double { atan2(acrossMetres, alongMetres) * 180 / .pi }
        public var inclinationDegrees: Double {
            atan2(heightMetres, (alongMetres * alongMetres + acrossMetres * acrossMetres).squareRoot()) * 180 / .pi
        }
        public var distanceMetres: Double {
            (alongMetres * alongMetres + acrossMetres * acrossMetres + heightMetres * heightMetres).squareRoot()
        }
    }

    /// The planned probe position of a reading (the plan's point, or the background
    /// station at the probe's park height), in the container's frame.
    public func position(of reading: RecordedReading) -> ContainerFramePosition {
        let container = plan.container
        let (x, y, height): (Double, Double, Double)
        if reading.kind == .background || !plan.points.indices.contains(reading.pointIndex) {
            (x, y, height) = (plan.backgroundX, plan.backgroundY, plan.profile.backgroundHeightMetres)
        } else {
            let point = plan.points[reading.pointIndex]
            (x, y, height) = (point.xMetres, point.yMetres, point.heightMetres)
        }
        let local = container.local(x: x, y: y)
        return ContainerFramePosition(alongMetres: local.along, acrossMetres: local.across, heightMetres: height)
    }
}

extension ScanExport {
    /// A finished scan's export: its report's readings, verdict, hot spots and seal.
    public init(report: ScanReport, supersededReadings: Int = 0) {
        self.init(scanId: report.scanId, robotId: report.robotId, firmware: report.firmware, officer: report.officer,
                  startedAt: report.startedAt, finishedAt: report.finishedAt, plan: report.plan, instrument: report.instrument,
                  readings: Self.inOrder(background: report.background, points: report.points, remeasures: report.remeasures),
                  supersededReadings: supersededReadings, verdict: report.verdict,
                  hotSpots: report.hotSpots ?? report.source.map { [$0] } ?? [],
                  chainHash: report.chainHash, seal: report.seal, completeness: .complete)
    }

    /// The counted readings as one list in the order taken (ties: background, then by point).
    public static func inOrder(background: [DoseReading], points: [Int: [DoseReading]], remeasures: [Int: [DoseReading]]) -> [RecordedReading] {
        var all = background.enumerated().map { RecordedReading(kind: .background, pointIndex: -1, ordinal: $0.offset, set: 0, reading: $0.element) }
        for (kind, byPoint) in [(RecordedReading.Kind.point, points), (.remeasure, remeasures)] {
            for (index, readings) in byPoint.sorted(by: { $0.key < $1.key }) {
                all += readings.enumerated().map { RecordedReading(kind: kind, pointIndex: index, ordinal: $0.offset, set: 0, reading: $0.element) }
            }
        }
        return all.enumerated().sorted { a, b in
            a.element.reading.takenAt != b.element.reading.takenAt ? a.element.reading.takenAt < b.element.reading.takenAt : a.offset < b.offset
        }.map(\.element)
    }
}
