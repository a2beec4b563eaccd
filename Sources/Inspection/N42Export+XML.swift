import Foundation

extension ScanExport {
    /// Ids of the document's fixed objects (xsd:ID values: unique, no spaces).
    static let instrumentId = "RadInstrumentInformation-Robot"
    static let detectorId = "GammaProbe"
    static let containerId = "RadItemInformation-Container"
    static let calibrationId = "EnergyCalibration-OneWindow"

    /// The id of the `k`-th exported measurement (1-based, in the order taken). SpecUtils
    /// numbers samples from `SampleN` ids, so its sample numbers follow the same order.
    public static func measurementId(_ k: Int) -> String { "Sample\(k)" }

    /// The document. Its `n42DocDateTime` is the scan's end for a finished scan (so two
    /// exports of one record are the same file), and `exportedAt` for an unfinished one.
    public func n42XML(exportedAt: Date) -> String {
        let documentTime = completeness == .complete ? (Self.parseTimestamp(finishedAt) ?? exportedAt) : exportedAt
        var x = XMLText()
        x.line("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        x.open("RadInstrumentData", ["xmlns": Self.namespace, "n42DocUUID": documentUUID, "n42DocDateTime": Self.timestamp(documentTime)])
        for remark in documentRemarks { x.leaf("Remark", remark) }
        x.leaf("RadInstrumentDataCreatorName", "Container radiation-inspection robot controller (robotd/robotctl)")
        writeInstrument(&x)
        writeDetector(&x)
        writeContainer(&x)
        x.open("EnergyCalibration", ["id": Self.calibrationId])
        x.leaf("Remark", "One channel: every pulse the probe counts, whatever its energy. The energies are nominal (the probe's "
               + "response range); the dose rate comes from the count rate and the Cs-137 calibration, not from a spectrum.")
        x.leaf("CoefficientValues", "30 2970 0")
        x.close("EnergyCalibration")
        for (k, recorded) in readings.enumerated() { writeMeasurement(&x, recorded, id: Self.measurementId(k + 1)) }
        if let verdict { writeAnalysis(&x, verdict) }
        x.close("RadInstrumentData")
        return x.text
    }

    /// A stable UUID for the document: from the reading chain's head, so a re-export of
    /// the same record has the same `n42DocUUID`, and a changed record a different one.
    var documentUUID: String {
        var hex = Array((chainHash.filter(\.isHexDigit).lowercased() + String(repeating: "0", count: 32)).prefix(32))
        if chainHash.isEmpty { hex = Array(UUID().uuidString.lowercased().filter(\.isHexDigit)) }
        hex[12] = "5"  // version 5 (name-based, SHA)
        let variant = (Int(String(hex[16]), radix: 16) ?? 0) & 0x3 | 0x8
        hex[16] = Character(String(variant, radix: 16))
        let s = String(hex)
        return [s.prefix(8), s.dropFirst(8).prefix(4), s.dropFirst(12).prefix(4), s.dropFirst(16).prefix(4), s.dropFirst(20)].joined(separator: "-")
    }

    var documentRemarks: [String] {
        var remarks = ["Scan \(scanId) of container \(plan.container.number.text) by robot \(robotId), officer \(officer); "
                       + "started \(startedAt)\(finishedAt.isEmpty ? "" : ", finished \(finishedAt)")."]
        switch completeness {
        case .complete:
            remarks.append("Complete: the verdict and every reading it rests on.")
        case .incomplete(let status):
            remarks.append("INCOMPLETE: the scan is \(status) and has no verdict. This file holds the \(readings.count) readings "
                           + "recorded so far; it is not an inspection result.")
        }
        if supersededReadings > 0 {
            remarks.append("\(supersededReadings) further readings are kept in the robot's record but do not count (sets cut short by a stop, "
                           + "earlier survey rounds) and are not in this file.")
        }
        remarks.append("Positions: RelativeLocation to the container (\(Self.containerId)); azimuth 0 is along the container from its "
                       + "doors, positive to the right; inclination positive upwards; distance in metres, from the door-end left corner at ground level.")
        remarks.append("Record: reading chain head \(chainHash)" + (seal.map { "; seal \($0.hash), key \($0.keyId), public key \($0.publicKey), "
                                                                            + "signature \($0.signature)" } ?? "; not sealed (unfinished)") + ".")
        return remarks
    }

    private func writeInstrument(_ x: inout XMLText) {
        x.open("RadInstrumentInformation", ["id": Self.instrumentId])
        x.leaf("RadInstrumentManufacturerName", "Container radiation-inspection robot project")
        x.leaf("RadInstrumentIdentifier", robotId)
        x.leaf("RadInstrumentModelName", "Container radiation-inspection robot")
        x.leaf("RadInstrumentDescription", "A robot that walks along a shipping container and measures the gamma dose rate on a grid "
               + "at a stand-off of \(Self.decimal(plan.profile.standOffMetres, 2)) m, following \(plan.profile.name).")
        x.leaf("RadInstrumentClassCode", "Mobile System")
        let versions = firmware.isEmpty ? [("firmware", "unknown")] : firmware.sorted { $0.key < $1.key }.map { ("\($0.key) firmware", $0.value) }
        for (name, version) in versions + [("procedure profile \(plan.profile.name)", "v\(plan.profile.version)")] {
            x.open("RadInstrumentVersion")
            x.leaf("RadInstrumentComponentName", name)
            x.leaf("RadInstrumentComponentVersion", version)
            x.close("RadInstrumentVersion")
        }
        var characteristics: [(String, String, String, String)] = [
            ("Detector serial number", instrument.serialNumber, "unit-less", "string"),
            ("Sensitivity", Self.decimal(instrument.sensitivityCountsPerSecondPerMicrosievertPerHour, 3), "cps per uSv/h", "double"),
            ("Calibration factor (Cs-137)", Self.decimal(instrument.calibrationFactor, 6), "unit-less", "double"),
            ("Calibration date", Self.date(instrument.calibrationDate), "unit-less", "date"),
            ("Calibration expiry", Self.date(instrument.calibrationExpiry), "unit-less", "date"),
        ]
        if let deadTime = instrument.deadTimeSeconds {
            characteristics.append(("Dead time (paralysable correction)", Self.decimal(deadTime * 1e6, 3), "us", "double"))
        }
        if let check = instrument.lastCheck {
            characteristics.append(("Last check-source test", "\(check.takenAt): response \(Self.decimal(check.response, 3)), "
                                    + (check.passed ? "passed" : "FAILED"), "unit-less", "string"))
        }
        characteristics.append(("Record chain head (SHA-256)", chainHash, "unit-less", "string"))
        if let seal {
            characteristics += [("Record seal (SHA-256)", seal.hash, "unit-less", "string"),
                                ("Record seal signature (Ed25519)", seal.signature, "unit-less", "string"),
                                ("Record seal public key (Ed25519)", seal.publicKey, "unit-less", "string")]
        }
        Self.writeCharacteristics(&x, "RadInstrumentCharacteristics", characteristics)
        x.close("RadInstrumentInformation")
    }

    private func writeDetector(_ x: inout XMLText) {
        x.open("RadDetectorInformation", ["id": Self.detectorId])
        x.leaf("RadDetectorName", "Gamma dose-rate probe \(instrument.serialNumber)")
        x.leaf("RadDetectorCategoryCode", "Gamma")
        x.leaf("RadDetectorKindCode", "PVT")
        x.leaf("RadDetectorDescription", "Plastic scintillator dose-rate probe on the robot's lift, calibrated with Cs-137; "
               + "\(Self.decimal(instrument.sensitivityCountsPerSecondPerMicrosievertPerHour, 0)) cps per uSv/h")
        x.close("RadDetectorInformation")
    }

    private func writeContainer(_ x: inout XMLText) {
        let c = plan.container
        x.open("RadItemInformation", ["id": Self.containerId])
        x.leaf("RadItemDescription", "Shipping container \(c.number.text), size-type \(c.size.rawValue)")
        x.leaf("RadItemMeasurementGeometryDescription", "\(plan.points.count) grid points on the faces "
               + "\(plan.profile.faces.map(\.rawValue).joined(separator: ", ")) at a stand-off of \(Self.decimal(plan.profile.standOffMetres, 2)) m; "
               + "background station \(Self.decimal(plan.profile.backgroundDistanceMetres, 1)) m before the doors.")
        Self.writeCharacteristics(&x, "RadItemCharacteristics", [
            ("Container number (ISO 6346)", c.number.text, "unit-less", "string"),
            ("Size-type code (ISO 6346)", c.size.rawValue, "unit-less", "string"),
            ("Length", Self.decimal(c.size.lengthMetres, 3), "m", "double"),
            ("Width", Self.decimal(c.size.widthMetres, 3), "m", "double"),
            ("Door-end left corner, yard x", Self.decimal(c.xMetres, 3), "m", "double"),
            ("Door-end left corner, yard y", Self.decimal(c.yMetres, 3), "m", "double"),
            ("Heading of the long axis from the doors", Self.decimal(c.headingDegrees, 2), "degrees", "double"),
        ])
        x.close("RadItemInformation")
    }

    private func writeMeasurement(_ x: inout XMLText, _ recorded: RecordedReading, id: String) {
        let reading = recorded.reading
        let background = recorded.kind == .background
        x.open("RadMeasurement", background ? ["id": id] : ["id": id, "radItemInformationReferences": Self.containerId])
        x.leaf("Remark", describe(recorded))
        if reading.overload { x.leaf("Remark", "OVERLOAD: the probe reported its count rate over range; the dose rate is a lower bound.") }
        x.leaf("MeasurementClassCode", background ? "Background" : "Foreground")
        x.leaf("StartDateTime", Self.timestamp(reading.takenAt.addingTimeInterval(-reading.seconds)))
        x.leaf("RealTimeDuration", Self.duration(reading.seconds))
        x.open("Spectrum", ["id": "\(id)-Spectrum", "radDetectorInformationReference": Self.detectorId, "energyCalibrationReference": Self.calibrationId])
        x.leaf("LiveTimeDuration", Self.duration(reading.seconds))
        x.leaf("ChannelData", "\(reading.counts)")
        x.close("Spectrum")
        x.open("GrossCounts", ["id": "\(id)-GrossCounts", "radDetectorInformationReference": Self.detectorId])
        x.leaf("LiveTimeDuration", Self.duration(reading.seconds))
        x.leaf("CountData", "\(reading.counts)")
        x.close("GrossCounts")
        x.open("DoseRate", ["id": "\(id)-DoseRate", "radDetectorInformationReference": Self.detectorId])
        x.leaf("DoseRateValue", Self.decimal(reading.grossDoseRate, 6))
        x.close("DoseRate")
        let p = position(of: recorded)
        x.open("RadInstrumentState", ["radInstrumentInformationReference": Self.instrumentId])
        x.open("StateVector")
        writeRelativeLocation(&x, p)
        x.close("StateVector")
        x.close("RadInstrumentState")
        x.close("RadMeasurement")
    }

    /// The reading in words, with its place in the plan and its container-frame position.
    func describe(_ recorded: RecordedReading) -> String {
        let p = position(of: recorded)
        let at = "along \(Self.decimal(p.alongMetres, 3)) m, across \(Self.decimal(p.acrossMetres, 3)) m, height \(Self.decimal(p.heightMetres, 3)) m"
        guard recorded.kind != .background, plan.points.indices.contains(recorded.pointIndex) else {
            return "background reading \(recorded.ordinal + 1) at the station; \(at)"
        }
        let point = plan.points[recorded.pointIndex]
        return "\(recorded.kind == .remeasure ? "re-measure" : "reading") \(recorded.ordinal + 1) of point \(point.index): face \(point.face.rawValue), "
            + "column \(point.column), row \(point.row), \(Self.decimal(point.positionAlongFaceMetres, 3)) m along the face; \(at)"
    }
}
