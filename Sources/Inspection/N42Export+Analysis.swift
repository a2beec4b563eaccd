import Foundation

extension ScanExport {
    /// The verdict as N42 analysis results: the algorithm (rule and profile), the outcome in
    /// words, a gamma `RadAlarm` when the container is anomalous or exceeds the limit, and
    /// the dose figures (background, average, maximum, minimum, the strongest hot spot).
    func writeAnalysis(_ x: inout XMLText, _ verdict: Verdict) {
        let ids = readings.indices.map { Self.measurementId($0 + 1) }
        x.open("AnalysisResults", ["radMeasurementReferences": ids.joined(separator: " ")])
        for flag in verdict.flags { x.leaf("Remark", "Flag: \(flag)") }
        for (i, spot) in hotSpots.enumerated() {
            x.leaf("Remark", "Hot spot \(i + 1): face \(spot.face.rawValue), along \(Self.decimal(spot.alongMetres, 2)) m, across "
                   + "\(Self.decimal(spot.acrossMetres, 2)) m, height \(Self.decimal(spot.heightMetres, 2)) m, depth behind the face "
                   + "\(Self.decimal(spot.depthBehindFaceMetres, 2)) m, at least \(Self.decimal(spot.equivalentCs137MBq, 3)) MBq Cs-137 equivalent"
                   + (spot.outsideContainer == true ? " (outside the container)" : ""))
        }
        if !finishedAt.isEmpty { x.leaf("AnalysisStartDateTime", finishedAt) }
        let rule = verdict.rule?.rule ?? "snt0570-1"
        x.leaf("AnalysisAlgorithmName", "\(plan.profile.name) grid survey verdict, decision rule \(rule)")
        x.leaf("AnalysisAlgorithmCreatorName", "Container radiation-inspection robot project")
        x.leaf("AnalysisAlgorithmDescription", "Net dose rate of each grid point against the station background (and, under rule 2, a "
               + "background model at the container), a decision threshold from the counting statistics, and a confirmation before "
               + "'exceeds'. The limit is background + \(Self.decimal(verdict.limit, 3)) uSv/h.")
        for (name, version) in [("decision rule", rule), ("procedure profile \(plan.profile.name)", "v\(plan.profile.version)")] {
            x.open("AnalysisAlgorithmVersion")
            x.leaf("AnalysisAlgorithmComponentName", name)
            x.leaf("AnalysisAlgorithmComponentVersion", version)
            x.close("AnalysisAlgorithmVersion")
        }
        x.leaf("AnalysisResultDescription", Self.outcomeText(verdict.outcome) + ": maximum net \(Self.decimal(verdict.maxNet, 4)) uSv/h"
               + (verdict.maxNetPointIndex.map { " at point \($0)" } ?? "") + "; decision threshold \(Self.decimal(verdict.decisionThreshold, 4)) uSv/h, "
               + "detection limit \(Self.decimal(verdict.detectionLimit, 4)) uSv/h, background \(Self.decimal(verdict.backgroundMean, 4)) ± "
               + "\(Self.decimal(verdict.backgroundDeviation, 4)) uSv/h (SD, \(verdict.backgroundReadings) readings)")
        if verdict.outcome >= .anomalous {
            x.open("RadAlarm", ["radDetectorInformationReferences": Self.detectorId])
            if !finishedAt.isEmpty { x.leaf("RadAlarmDateTime", finishedAt) }
            x.leaf("RadAlarmCategoryCode", "Gamma")
            x.leaf("RadAlarmDescription", Self.outcomeText(verdict.outcome))
            x.close("RadAlarm")
        }
        let foreground = readings.filter { $0.kind != .background }.map(\.reading.grossDoseRate)
        x.open("DoseAnalysisResults")
        if !foreground.isEmpty {
            x.leaf("AverageDoseRateValue", Self.decimal(foreground.reduce(0, +) / Double(foreground.count), 6))
            x.leaf("MaximumDoseRateValue", Self.decimal(foreground.max() ?? 0, 6))
            x.leaf("MinimumDoseRateValue", Self.decimal(foreground.min() ?? 0, 6))
        }
        x.leaf("BackgroundDoseRateValue", Self.decimal(verdict.backgroundMean, 6))
        x.leaf("BackgroundDoseRateUncertaintyValue", Self.decimal(verdict.backgroundDeviation, 6))
        if verdict.outcome >= .anomalous, let spot = hotSpots.first {
            let p = ContainerFramePosition(alongMetres: spot.alongMetres, acrossMetres: spot.acrossMetres, heightMetres: spot.heightMetres)
            x.open("SourcePosition")
            writeRelativeLocation(&x, p)
            x.close("SourcePosition")
        }
        x.close("DoseAnalysisResults")
        x.close("AnalysisResults")
    }

    /// N42's `RelativeLocation`: polar from the container's door-end left corner.
    func writeRelativeLocation(_ x: inout XMLText, _ p: ContainerFramePosition) {
        x.open("RelativeLocation")
        x.leaf("RelativeLocationAzimuthValue", Self.decimal(p.azimuthDegrees, 4))
        x.leaf("RelativeLocationInclinationValue", Self.decimal(p.inclinationDegrees, 4))
        x.leaf("DistanceValue", Self.decimal(p.distanceMetres, 4))
        x.open("Origin", ["originReference": Self.containerId])
        x.leaf("OriginDescription", "door-end left corner of container \(plan.container.number.text), at ground level")
        x.close("Origin")
        x.close("RelativeLocation")
    }

    static func outcomeText(_ outcome: Outcome) -> String {
        switch outcome {
        case .pass: "PASS: not distinguishable from background"
        case .inconclusive: "INCONCLUSIVE: the evidence cannot carry a verdict; measure again"
        case .anomalous: "ANOMALOUS: above background, within the limit"
        case .exceeds: "EXCEEDS THE LIMIT"
        }
    }

    static func writeCharacteristics(_ x: inout XMLText, _ element: String, _ items: [(name: String, value: String, units: String, dataClass: String)]) {
        x.open(element)
        for item in items {
            x.open("Characteristic")
            x.leaf("CharacteristicName", item.name)
            x.leaf("CharacteristicValue", item.value)
            x.leaf("CharacteristicValueUnits", item.units)
            x.leaf("CharacteristicValueDataClassCode", item.dataClass)
            x.close("Characteristic")
        }
        x.close(element)
    }

    // MARK: Values in XML Schema's lexical forms

    static func decimal(_ value: Double, _ places: Int) -> String {
        value.isFinite ? String(format: "%.\(places)f", value) : "0"
    }

    /// `xsd:duration` in the one form every reader takes: `PTn.nnnS`.
    static func duration(_ seconds: Double) -> String { "PT" + decimal(max(seconds, 0), 3) + "S" }

    /// `xsd:dateTime` in UTC with milliseconds.
    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// A stored time (ISO 8601, with or without fractional seconds).
    static func parseTimestamp(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// YYYYMMDD as `xsd:date`.
    static func date(_ yyyymmdd: UInt32) -> String {
        String(format: "%04d-%02d-%02d", Int(yyyymmdd / 10000), Int(yyyymmdd / 100 % 100), Int(yyyymmdd % 100))
    }
}

/// A small XML writer: escaped text and attributes, two-space indent.
struct XMLText {
    private(set) var text = ""
    private var depth = 0

    mutating func line(_ s: String) { text += String(repeating: "  ", count: depth) + s + "\n" }

    mutating func open(_ name: String, _ attributes: KeyValuePairs<String, String> = [:]) {
        line("<\(name)\(Self.attributes(attributes))>")
        depth += 1
    }

    mutating func close(_ name: String) {
        depth -= 1
        line("</\(name)>")
    }

    mutating func leaf(_ name: String, _ value: String) { line("<\(name)>\(Self.escape(value))</\(name)>") }

    static func attributes(_ pairs: KeyValuePairs<String, String>) -> String {
        pairs.map { " \($0.key)=\"\(escape($0.value))\"" }.joined()
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            // Characters XML 1.0 cannot hold at all become a visible mark, not a broken file.
            case _ where c.value < 0x20 && c != "\n" && c != "\t" && c != "\r": out += "\u{FFFD}"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
