import Foundation
import Inspection
import RobotAPI
import RobotTesting
import Testing

/// Every state and stop cause the phone can show has its words in both languages (issue
/// 18, the officer's view): the codes come from the API's own enums, so a new stop cause
/// or phase without a Chinese name fails here, not in the yard.
@Suite(.enabled(if: TestTier.fast)) struct PhoneUITranslationTests {
    static let ui = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/CommandServer/PhoneUI")

    /// The keys of the `en: {…}` and `zh: {…}` tables of app.js.
    static func keys() throws -> (en: Set<String>, zh: Set<String>) {
        let script = try String(contentsOf: ui.appendingPathComponent("app.js"), encoding: .utf8)
        func table(_ name: String, endingBefore next: String) throws -> Set<String> {
            let start = try #require(script.range(of: "  \(name): {\n"))
            let end = try #require(script.range(of: next, range: start.upperBound..<script.endIndex))
            let body = script[start.upperBound..<end.lowerBound]
            let key = /([A-Za-z_]+): "/
            return Set(body.matches(of: key).map { String($0.output.1) })
        }
        return (try table("en", endingBefore: "\n  zh: {"), try table("zh", endingBefore: "\n};"))
    }

    @Test func everyStopCauseStatePhaseFaceDeviceAndScannerStateHasBothLanguages() throws {
        let (en, zh) = try Self.keys()
        var needed = StopCauseCode.allCases.map { "cause_\($0.rawValue)" }
        needed += DeviceLifecycle.allCases.map { "life_\($0.rawValue)" }
        needed += ScanPhase.allCases.map { "phase_\($0.rawValue)" }
        needed += FieldScannerCode.allCases.map { "field_\($0.rawValue)" }
        needed += ScanState.allCases.map { "state_\($0.rawValue)" }
        needed += ProcedureProfile.Face.allCases.map { "face_\($0.rawValue)" }
        needed += ["safety", "chassis", "lift", "detector"].map { "dev_\($0)" }
        #expect(needed.filter { !en.contains($0) }.isEmpty, "missing in English: \(needed.filter { !en.contains($0) })")
        #expect(needed.filter { !zh.contains($0) }.isEmpty, "missing in Chinese: \(needed.filter { !zh.contains($0) })")
    }

    @Test func everyLabelOfThePageHasBothLanguages() throws {
        let (en, zh) = try Self.keys()
        let html = try String(contentsOf: Self.ui.appendingPathComponent("index.html"), encoding: .utf8)
        let labels = Set(html.matches(of: /data-t="([A-Za-z_]+)"/).map { String($0.output.1) })
        #expect(labels.count > 30)
        #expect(labels.subtracting(en).isEmpty, "missing in English: \(labels.subtracting(en).sorted())")
        #expect(labels.subtracting(zh).isEmpty, "missing in Chinese: \(labels.subtracting(zh).sorted())")
        #expect(en.subtracting(zh).isEmpty, "English words without Chinese: \(en.subtracting(zh).sorted())")
    }
}
