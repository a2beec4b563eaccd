import Foundation
import Inspection
import RobotTesting
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The N42.42 export's own rules, on a plan turned 30° in the yard (SpecUtils, the
/// independent reader, checks the files of real scans in `scripts/n42_check.py`).
@Suite(.enabled(if: TestTier.fast)) struct N42ExportTests {
    static func plan() throws -> ScanPlan {
        ScanPlan(container: ContainerPlacement(number: try ContainerNumber("MSKU9070323"), size: .fortyFoot, xMetres: 5, yMetres: -3,
                                               headingDegrees: 30), profile: ProcedureProfile())
    }

    static func reading(_ seconds: Double, at: TimeInterval, counts: UInt32 = 90) -> DoseReading {
        DoseReading(counts: counts, seconds: seconds, countRatePerSecond: Double(counts) / seconds, rawDoseRate: 0.1, grossDoseRate: 0.1 + at / 1e6,
                    instrumentDoseRate: 0.1, overload: false, takenAt: Date(timeIntervalSince1970: 1_796_600_000 + at))
    }

    static func export(_ plan: ScanPlan, completeness: ScanExport.Completeness) -> ScanExport {
        let readings = ScanExport.inOrder(background: [reading(3, at: 1), reading(3, at: 4)],
                                          points: [0: [reading(3, at: 10)], 150: [reading(3, at: 20, counts: 5000)]],
                                          remeasures: [150: [reading(6, at: 30, counts: 9000)]])
        return ScanExport(scanId: "scan-1", robotId: "RIR-01 <test & \"quotes\">", firmware: ["chassis": "1.0"], officer: "王警官",
                          startedAt: "2026-12-07T06:00:00.000Z", finishedAt: "", plan: plan,
                          instrument: InstrumentRecord(serialNumber: "GD-1", sensitivityCountsPerSecondPerMicrosievertPerHour: 300,
                                                       calibrationFactor: 1, calibrationDate: 20260301, calibrationExpiry: 20270301),
                          readings: readings, supersededReadings: 2, verdict: nil, hotSpots: [],
                          chainHash: String(repeating: "ab", count: 32), seal: nil, completeness: completeness)
    }

    @Test func positionsAreInTheContainersFrameWhereverItStands() throws {
        let plan = try Self.plan()
        let export = Self.export(plan, completeness: .complete)
        let stand = plan.profile.standOffMetres
        for recorded in export.readings where recorded.kind != .background {
            let point = plan.points[recorded.pointIndex]
            let p = export.position(of: recorded)
            // The plan's yard position, taken back into the container's frame, is on the
            // face's line at the stand-off, at the point's height and distance along the face.
            switch point.face {
            case .left: #expect(abs(p.acrossMetres + stand) < 1e-9 && abs(p.alongMetres - point.positionAlongFaceMetres) < 1e-9)
            case .right: #expect(abs(p.acrossMetres - (plan.container.size.widthMetres + stand)) < 1e-9)
            case .door: #expect(abs(p.alongMetres + stand) < 1e-9)
            case .front: #expect(abs(p.alongMetres - (plan.container.size.lengthMetres + stand)) < 1e-9)
            }
            #expect(p.heightMetres == point.heightMetres)
            // The polar form N42 carries gives the same point back.
            let a = p.azimuthDegrees * .pi / 180, i = p.inclinationDegrees * .pi / 180
            #expect(abs(p.distanceMetres * cos(i) * cos(a) - p.alongMetres) < 1e-9)
            #expect(abs(p.distanceMetres * cos(i) * sin(a) - p.acrossMetres) < 1e-9)
            #expect(abs(p.distanceMetres * sin(i) - p.heightMetres) < 1e-9)
        }
        #expect(export.position(of: export.readings[0]).alongMetres < 0, "the background station is before the doors")
    }

    @Test func readingsGoInTheOrderTakenAndAnUnfinishedScanSaysSo() throws {
        let export = Self.export(try Self.plan(), completeness: .incomplete(status: "unfinished"))
        #expect(export.readings.map(\.kind) == [.background, .background, .point, .point, .remeasure])
        let xml = export.n42XML(exportedAt: Date(timeIntervalSince1970: 1_796_600_100))
        #expect(xml.contains("INCOMPLETE: the scan is unfinished and has no verdict"))
        #expect(xml.contains("2 further readings are kept"))
        #expect(!xml.contains("<AnalysisResults"), "no verdict, no analysis")
        #expect(xml.contains("n42DocDateTime=\"2026-12-06T"), "an unfinished scan's document is dated at its export")
        #expect(xml.contains("<StartDateTime>2026-12-06T") && xml.contains("<RealTimeDuration>PT6.000S</RealTimeDuration>"))
        #expect(xml.contains("RIR-01 &lt;test &amp; &quot;quotes&quot;&gt;"), "text is escaped")
        #expect(xml.contains("王警官"))
    }

    @Test func theDocumentIsWellFormedWithUniqueIdsAndResolvableReferences() throws {
        let xml = Self.export(try Self.plan(), completeness: .complete).n42XML(exportedAt: Date())
        let collector = IdCollector()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = collector
        #expect(parser.parse(), "well-formed: \(parser.parserError.map { "\($0)" } ?? "")")
        #expect(collector.root == "RadInstrumentData")
        #expect(Set(collector.ids).count == collector.ids.count, "xsd:ID values are unique")
        #expect(collector.references.allSatisfy { collector.ids.contains($0) }, "every reference names an id: \(collector.references.filter { !collector.ids.contains($0) })")
        #expect(collector.count("RadMeasurement") == 5)
    }

    @Test func theDocumentUUIDFollowsTheRecord() throws {
        var export = Self.export(try Self.plan(), completeness: .complete)
        export.finishedAt = "2026-12-07T06:10:00.000Z"
        let first = export.n42XML(exportedAt: Date(timeIntervalSince1970: 0))
        #expect(first == export.n42XML(exportedAt: Date(timeIntervalSince1970: 1000)), "a finished scan exports to the same file every time")
        #expect(first.contains("n42DocDateTime=\"2026-12-07T06:10:00.000Z\""))
        let uuid = try #require(first.firstMatch(of: /n42DocUUID="([0-9a-f-]{36})"/)?.1)
        #expect(UUID(uuidString: String(uuid)) != nil)
        export.chainHash = String(repeating: "cd", count: 32)
        #expect(export.n42XML(exportedAt: Date(timeIntervalSince1970: 0)).firstMatch(of: /n42DocUUID="([0-9a-f-]{36})"/)?.1 != uuid)
    }
}

/// Collects `id` attributes and the references to them (IDREF and IDREFS attributes).
final class IdCollector: NSObject, XMLParserDelegate {
    var root: String?
    var ids: [String] = []
    var references: [String] = []
    private var elements: [String: Int] = [:]

    func count(_ name: String) -> Int { elements[name] ?? 0 }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if root == nil { root = name }
        elements[name, default: 0] += 1
        for (key, value) in attributes {
            if key == "id" { ids.append(value) }
            if key.hasSuffix("Reference") || key.hasSuffix("References") { references += value.split(separator: " ").map(String.init) }
        }
    }
}
