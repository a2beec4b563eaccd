import Foundation

/// Everything a scan's report shows, and its renderers: JSON (complete), CSV (every
/// point) and a printable bilingual HTML page with a heat map of each face.
public struct ScanReport: Sendable, Codable {
    public var scanId: String
    public var robotId: String
    /// Firmware version of each unit, as read at the start of the scan.
    public var firmware: [String: String]
    public var officer: String
    public var startedAt: String
    public var finishedAt: String
    public var plan: ScanPlan
    public var instrument: InstrumentRecord
    public var background: [DoseReading]
    public var points: [Int: [DoseReading]]
    public var remeasures: [Int: [DoseReading]]
    public var verdict: Verdict
    public var source: SourceEstimate?
    /// Rule 2: every hot spot, strongest first (`SourceLocalisation.hotSpots`).
    public var hotSpots: [SourceEstimate]?
    /// The last hash of the scan's reading chain.
    public var chainHash: String
    /// The record's signed seal: its hash, signature and signing key. Keep it (print the
    /// report, or let the central service hold it): `robotctl verify --anchors` checks the
    /// store against it, which catches even a history rewritten and re-signed on the robot.
    public var seal: RecordSeal?

    public init(scanId: String, robotId: String, firmware: [String: String], officer: String, startedAt: String, finishedAt: String, plan: ScanPlan,
                instrument: InstrumentRecord, background: [DoseReading], points: [Int: [DoseReading]],
                remeasures: [Int: [DoseReading]], verdict: Verdict, source: SourceEstimate?, chainHash: String, seal: RecordSeal? = nil,
                hotSpots: [SourceEstimate]? = nil) {
        self.seal = seal
        self.hotSpots = hotSpots
        self.scanId = scanId
        self.robotId = robotId
        self.firmware = firmware
        self.officer = officer
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.plan = plan
        self.instrument = instrument
        self.background = background
        self.points = points
        self.remeasures = remeasures
        self.verdict = verdict
        self.source = source
        self.chainHash = chainHash
    }

    /// How the points were measured: standing (SN/T 0570-2007), or moving with the points
    /// it marked measured standing (`docs/procedure.md` §10).
    var surveyText: String {
        guard plan.profile.movingSurvey else { return "定点 standing at every point (SN/T 0570-2007)" }
        return String(format: "走行 moving (up to %.2f m/s, each cell to mark +%.2f μSv/h); every marked point measured standing, "
                      + "which decides the limit", plan.profile.surveyMaxSpeedMetresPerSecond ?? 0, plan.profile.surveyDetectionMicrosievertsPerHour ?? 0)
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // Milliseconds: a reading's time is part of the record (N42 exports and reviewers
        // match readings by it), and whole seconds would merge a point's readings.
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ScanExport.timestamp(date))
        }
        return try encoder.encode(self)
    }

    public func csv() -> String {
        var lines = ["index,face,column,row,alongFaceMetres,heightMetres,xMetres,yMetres,readings,grossMean,grossMax,grossSD,net,netUncertainty,outcome,remeasureMean"]
        let judged = Dictionary(uniqueKeysWithValues: verdict.points.map { ($0.pointIndex, $0) })
        for p in plan.points {
            let j = judged[p.index]
            let re = remeasures[p.index].map { CountingStatistics.meanAndDeviation($0.map(\.grossDoseRate)).mean }
            let fields: [String] = [
                "\(p.index)", p.face.rawValue, "\(p.column)", "\(p.row)", f(p.positionAlongFaceMetres, 3), f(p.heightMetres, 2),
                f(p.xMetres, 3), f(p.yMetres, 3), (points[p.index] ?? []).map { f($0.grossDoseRate, 4) }.joined(separator: ";"),
                j.map { f($0.grossMean, 4) } ?? "", j.map { f($0.grossMax, 4) } ?? "", j.map { f($0.grossDeviation, 4) } ?? "",
                j.map { f($0.net, 4) } ?? "", j.map { f($0.netUncertainty, 4) } ?? "", j?.outcome.rawValue ?? "not measured",
                re.map { f($0, 4) } ?? "",
            ]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func f(_ x: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", x) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A printable report in Chinese and English.
    public func html() -> String {
        let unit = plan.profile.doseUnit.rawValue.replacingOccurrences(of: "u", with: "μ")
        let outcome: (zh: String, en: String, colour: String) = switch verdict.outcome {
        case .pass: ("合格", "PASS", "#1b7f2a")
        case .inconclusive: ("无法判定（需复测）", "INCONCLUSIVE (measure again)", "#5a4a9a")
        case .anomalous: ("异常（未超限）", "ANOMALOUS (within the limit)", "#b36b00")
        case .exceeds: ("超出限值", "EXCEEDS THE LIMIT", "#b00020")
        }
        var h = """
        <!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>辐射检测报告 Radiation inspection report \(Self.escape(plan.container.number.text))</title>
        <style>body{font-family:sans-serif;margin:24px;color:#111}table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 8px;font-size:13px}
        .verdict{font-size:28px;font-weight:bold;color:\(outcome.colour)}h2{margin-top:28px}.face{margin:12px 0}</style></head><body>
        <h1>进口可用作原料的固体废物放射性污染检验报告<br><small>Radioactive contamination inspection report (SN/T 0570-2007)</small></h1>
        <table>
        <tr><th>集装箱号 Container</th><td>\(Self.escape(plan.container.number.text)) (\(plan.container.size.rawValue))</td></tr>
        <tr><th>扫描 Scan</th><td>\(Self.escape(scanId))</td></tr>
        <tr><th>机器人 Robot</th><td>\(Self.escape(robotId))</td></tr>
        <tr><th>固件 Firmware</th><td>\(Self.escape(firmware.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; ")))</td></tr>
        <tr><th>检验员 Officer</th><td>\(Self.escape(officer))</td></tr>
        <tr><th>开始 / 结束 Started / finished</th><td>\(Self.escape(startedAt)) / \(Self.escape(finishedAt))</td></tr>
        <tr><th>程序 Profile</th><td>\(Self.escape(plan.profile.name)) v\(plan.profile.version)</td></tr>
        <tr><th>测量方式 Survey</th><td>\(surveyText)</td></tr>
        </table>
        <h2>结论 Verdict</h2><p class="verdict">\(outcome.zh) — \(outcome.en)</p>
        <table>
        <tr><th>本底 Background</th><td>\(f(verdict.backgroundMean, 3)) ± \(f(verdict.backgroundDeviation, 3)) \(unit) (SD, n = \(verdict.backgroundReadings))</td></tr>
        <tr><th>限值 Limit</th><td>background + \(f(verdict.limit, 2)) \(unit)</td></tr>
        <tr><th>最大净剂量率 Max net</th><td>\(f(verdict.maxNet, 3)) \(unit)\(verdict.maxNetPointIndex.map { " at point \($0) (\(plan.points[$0].face.rawValue), \(f(plan.points[$0].positionAlongFaceMetres, 2)) m, \(f(plan.points[$0].heightMetres, 1)) m)" } ?? "")</td></tr>
        <tr><th>判断阈 Decision threshold</th><td>\(f(verdict.decisionThreshold, 3)) \(unit) (α per point \(String(format: "%.2e", verdict.pointAlpha)), k = \(f(verdict.k, 2)), container α \(plan.profile.alpha), \(plan.profile.multipleComparison.rawValue))</td></tr>
        <tr><th>探测限 Detection limit</th><td>\(f(verdict.detectionLimit, 3)) \(unit)</td></tr>
        \(verdict.flags.map { "<tr><th>注意 Flag</th><td>\(Self.escape($0))</td></tr>" }.joined())
        </table>
        """
        h += ruleSection(unit: unit)
        if let spots = hotSpots, !spots.isEmpty {
            h += "<h2>热点 Hot spots</h2><table><tr><th>#</th><th>面 Face</th><th>距箱门 Along (m)</th><th>横向 Across (m)</th>"
                + "<th>高度 Height (m)</th><th>深度 Depth (m)</th><th>活度下限 Activity ≥ (MBq Cs-137 eq.)</th></tr>"
            for (i, s) in spots.enumerated() {
                h += "<tr><td>\(i + 1)</td><td>\(s.face.rawValue)\(s.outsideContainer == true ? " (outside the container 箱外)" : "")</td>"
                    + "<td>\(f(s.alongMetres, 2)) ± \(f(s.alongUncertaintyMetres, 2))</td><td>\(f(s.acrossMetres, 2)) ± \(f(s.acrossUncertaintyMetres, 2))</td>"
                    + "<td>\(f(s.heightMetres, 2)) ± \(f(s.heightUncertaintyMetres, 2))</td><td>\(f(s.depthBehindFaceMetres, 2))</td>"
                    + "<td>\(f(s.equivalentCs137MBq, 1))</td></tr>"
            }
            h += "</table><p>The activity is a lower bound: cargo and steel attenuate what the probe sees. 活度为下限。</p>"
        } else if let s = source {
            h += """
            <h2>源位置估计 Estimated source location</h2>
            <p>面 Face: <b>\(s.face.rawValue)</b>; 距箱门 along from the doors \(f(s.alongMetres, 2)) ± \(f(s.alongUncertaintyMetres, 2)) m;
            高度 height \(f(s.heightMetres, 2)) ± \(f(s.heightUncertaintyMetres, 2)) m; 距箱壁深度 depth behind the wall \(f(s.depthBehindFaceMetres, 2)) m;
            活度下限 activity ≥ \(f(s.equivalentCs137MBq, 1)) MBq (unshielded Cs-137 equivalent).</p>
            """
        }
        h += "<h2>各面热图 Heat map of each face</h2>"
        for face in plan.profile.faces { h += heatMap(face) }
        h += "<h2>各面统计 Per face</h2><table><tr><th>Face</th><th>mean</th><th>max</th><th>at point</th></tr>"
        for s in verdict.faces {
            h += "<tr><td>\(s.face.rawValue)</td><td>\(f(s.meanGross, 3))</td><td>\(f(s.maxGross, 3))</td><td>\(s.maxPointIndex)</td></tr>"
        }
        h += "</table><h2>仪器 Instrument</h2><table>"
        h += "<tr><th>序列号 Serial</th><td>\(Self.escape(instrument.serialNumber))</td></tr>"
        h += "<tr><th>校准因子 Calibration factor</th><td>\(instrument.calibrationFactor)</td></tr>"
        h += "<tr><th>校准日期 / 有效期 Calibrated / expires</th><td>\(instrument.calibrationDate) / \(instrument.calibrationExpiry)</td></tr>"
        h += "<tr><th>灵敏度 Sensitivity</th><td>\(f(instrument.sensitivityCountsPerSecondPerMicrosievertPerHour, 1)) cps per μSv/h</td></tr>"
        if let tau = instrument.deadTimeSeconds {
            h += "<tr><th>死时间 Dead time</th><td>\(f(tau * 1e6, 2)) µs (non-paralysable correction)</td></tr>"
        }
        let check = instrument.lastCheck.map { "response \(f($0.response, 3)) on \(Self.escape($0.takenAt)), \($0.passed ? "passed" : "FAILED")" }
            ?? "none in the 24 h before the scan"
        h += "<tr><th>日常检查 Check-source test</th><td>\(check)</td></tr></table>"
        h += "<h2>本底读数 Background readings</h2><p>" + background.map { f($0.grossDoseRate, 3) }.joined(separator: ", ") + " \(unit)</p>"
        h += "<h2>记录哈希 Record hash</h2><p><code>\(Self.escape(chainHash))</code></p>"
        if let seal {
            h += "<h2>记录封印 Record seal</h2><table><tr><th>封印哈希 Seal hash</th><td><code>\(Self.escape(seal.hash))</code></td></tr>"
            h += "<tr><th>签名密钥 Signing key</th><td><code>\(Self.escape(seal.keyId))</code> (\(Self.escape(seal.publicKey)))</td></tr>"
            h += "<tr><th>签名 Signature</th><td><code style=\"word-break:break-all\">\(Self.escape(seal.signature))</code></td></tr></table>"
            h += "<p>核对 Check: <code>robotctl verify --anchors FILE</code> with the line <code>scan \(Self.escape(scanId)) \(Self.escape(seal.hash))</code></p>"
        }
        h += "</body></html>\n"
        return h
    }

    /// The decision rule the verdict was judged by, with its characteristic values.
    func ruleSection(unit: String) -> String {
        guard let rule = verdict.rule else {
            return "<p>判定规则 Decision rule: SN/T 0570 rule 1 (every point against the station background, Šidák).</p>"
        }
        var h = "<h2>判定规则 Decision rule</h2><table>"
        h += "<tr><th>规则 Rule</th><td>\(Self.escape(rule.rule)) (docs/procedure.md)</td></tr>"
        h += "<tr><th>误报率 Container α</th><td>\(rule.containerAlpha); screening α \(String(format: "%.2e", rule.screeningAlpha)) "
            + "(k₁ = \(f(rule.screeningK, 2))), confirmation k₂ = \(f(rule.confirmationK, 2)), single stage k = \(f(rule.singleStageK, 2)), "
            + "β = \(rule.settings.beta) (k_β = \(f(rule.betaK, 2)))</td></tr>"
        h += "<tr><th>超限 Exceeds</th><td>pooled first reading and re-measure against the station background + \(f(verdict.limit, 2)) \(unit); "
            + "uncertain zone ± \(f(rule.settings.exceedsZoneK, 3)) u, calibration \(f(100 * rule.settings.calibrationRelativeUncertainty, 0)) %</td></tr>"
        if let m = rule.background {
            h += "<tr><th>箱旁本底模型 Background at the container</th><td>level \(f(m.siteLevel, 3)) ± \(f(m.siteLevelUncertainty, 3)) of the station "
                + "(allowance \(f(100 * rule.settings.siteOffsetAllowance, 0)) %), shadowing \(f(m.shadowing, 2)) ± \(f(m.shadowingUncertainty, 2)), "
                + "\(m.outliers) of \(m.pointsFitted + m.outliers) points set aside, model error \(f(100 * rule.settings.modelResidualFraction, 0)) %</td></tr>"
        }
        let end = rule.stationEndCountsPerSecond.map { f($0, 1) } ?? "—"
        h += "<tr><th>站点本底 Station</th><td>\(f(rule.stationStartCountsPerSecond, 1)) cps at the start, \(end) at the end</td></tr></table>"
        return h
    }

    /// One face as an SVG grid: columns by rows, coloured by gross dose rate against
    /// background (green) to the limit (red); exceeding points are ringed.
    func heatMap(_ face: ProcedureProfile.Face) -> String {
        let facePoints = plan.points.filter { $0.face == face }
        guard let columns = facePoints.map(\.column).max(), let rows = facePoints.map(\.row).max() else { return "" }
        let judged = Dictionary(uniqueKeysWithValues: verdict.points.map { ($0.pointIndex, $0) })
        let cell = 22.0
        let width = Double(columns + 1) * cell + 40
        let height = Double(rows + 1) * cell + 30
        var svg = "<div class=\"face\"><b>\(face.rawValue)</b><br><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\">"
        for p in facePoints {
            let x = 30 + Double(p.column) * cell
            let y = Double(rows - p.row) * cell + 4
            guard let j = judged[p.index] else {
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"#ddd\"/>"
                continue
            }
            let fraction = max(0, min(1, (j.grossMean - verdict.backgroundMean) / max(verdict.limit, 1e-9)))
            let red = Int(255 * fraction)
            let green = Int(200 * (1 - fraction))
            svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"rgb(\(red),\(green),40)\"><title>point \(p.index): \(f(j.grossMean, 3))</title></rect>"
            if j.outcome == .exceeds {
                svg += "<circle cx=\"\(x + cell / 2 - 1)\" cy=\"\(y + cell / 2 - 1)\" r=\"\(cell / 2 - 3)\" fill=\"none\" stroke=\"black\" stroke-width=\"2\"/>"
            }
        }
        for row in 0...rows {
            let y = Double(rows - row) * cell + 4 + cell / 2 + 4
            let heights = facePoints.filter { $0.row == row }.first?.heightMetres ?? 0
            svg += "<text x=\"0\" y=\"\(y)\" font-size=\"10\">\(f(heights, 1))m</text>"
        }
        return svg + "</svg></div>"
    }

    /// Writes `SCAN.json`, `SCAN.csv` and `SCAN.html` into `directory`; returns the HTML path.
    @discardableResult
    public func write(to directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = (directory as NSString).appendingPathComponent(scanId)
        try json().write(to: URL(fileURLWithPath: base + ".json"))
        try csv().write(toFile: base + ".csv", atomically: true, encoding: .utf8)
        try html().write(toFile: base + ".html", atomically: true, encoding: .utf8)
        return base + ".html"
    }
}

/// A finished scan's seal as a report shows it.
public struct RecordSeal: Sendable, Codable, Equatable {
    public var hash: String
    public var keyId: String
    public var publicKey: String
    public var signature: String

    public init(hash: String, keyId: String, publicKey: String, signature: String) {
        self.hash = hash
        self.keyId = keyId
        self.publicKey = publicKey
        self.signature = signature
    }
}
