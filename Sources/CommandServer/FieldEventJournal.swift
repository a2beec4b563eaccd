import Foundation
import InspectionStore
import RobotControl
import ServiceLifecycle

/// Writes what the loop did about people and vehicles (protocol 1.1 H9: slow-downs,
/// protective stops, resumes, give-ups, scanner faults) into the hash-chained audit log,
/// each with where the robot stood and the scan under way. The loop keeps the events in a
/// fixed ring (256); this drains it twice a second, so none is lost while robotd runs.
struct FieldEventJournal: Service {
    let loop: ControlLoop
    let store: ScanStore
    let desk: ScanDesk
    var intervalSeconds = 0.5

    func run() async throws {
        let last = await cancelWhenGracefulShutdown {
            var last: UInt64 = 0
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(intervalSeconds * 1e9))
                last = await drain(after: last)
            }
            return last
        }
        // What came in since the last round, at shutdown.
        _ = await drain(after: last)
    }

    func drain(after sequence: UInt64) async -> UInt64 {
        var last = sequence
        for event in loop.fieldEvents(after: sequence) {
            try? await store.recordAudit(actor: "robot", action: Self.action(event.kind), detail: Self.detail(event, scan: desk.active?.id))
            last = event.sequence
        }
        return last
    }

    static func action(_ kind: FieldEvent.Kind) -> String { "people.\(kind.rawValue)" }

    static func detail(_ event: FieldEvent, scan: String?) -> String {
        String(format: "at (%.2f, %.2f) m heading %.1f°, %.2f m/s", event.xMetres, event.yMetres, event.headingDegrees,
               event.speedMetresPerSecond) + (scan.map { "; scan \($0)" } ?? "")
    }
}
