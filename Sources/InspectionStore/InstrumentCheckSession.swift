import Foundation
import Inspection
import RobotControl

/// Runs a check-source test through the control loop and records it: the officer has put
/// the check source in its holder on the probe; the robot counts for `seconds` where it
/// stands, and the store keeps the result (`InstrumentCheck`). Used by the command server
/// (`POST /api/v1/instrument/checks`, `robotctl check-source`).
public enum InstrumentCheckSession {
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case noDetector
        case measurement(String)
        case store(String)
        case reference(CheckSourceReference.Problem)

        public var description: String {
            switch self {
            case .reference(let problem): return problem.description
            case .noDetector: return "the detector has not reported its identity and calibration yet; wait for it to come up"
            case .measurement(let m): return "the check reading could not be taken: \(m)"
            case .store(let m): return "the check could not be stored: \(m)"
            }
        }
    }

    /// Counts for `seconds` where the robot stands (the check source in its holder), and
    /// returns the reading and the detector's serial number. Asynchronous, no SQLite.
    public static func measure(loop: ControlLoop, seconds: Double) async throws(Failure) -> (reading: DoseReading, serialNumber: String) {
        guard let info = loop.detectorInfo else { throw .noDetector }
        let feedback = await loop.run(.measure(seconds: seconds), timeout: seconds + 30)
        guard let feedback, feedback.state == .done, let r = feedback.reading else {
            throw .measurement(feedback?.problem.map { "\($0)" } ?? "no answer from the control loop")
        }
        return (DoseReading(r, calibrationFactor: info.calibrationFactor, takenAt: Date()), info.serialNumber)
    }

    /// Judges the reading and stores the check. Blocking (SQLite): call it off the
    /// cooperative pool.
    /// The reference is the detector's registered check source, decayed to `day`; a typed
    /// one must agree with it, and is used alone only when no source is registered.
    public static func record(store: ScanStore, reading: DoseReading, serialNumber: String, typedReference: Double?,
                              tolerance: Double = InstrumentCheck.defaultTolerance, actor: String,
                              day: UInt32 = ScanSession.today()) throws(Failure) -> InstrumentCheck {
        let registered: CheckSourceReference?
        do {
            registered = try store.checkSourceReference(serialNumber: serialNumber)
        } catch {
            throw .store("\(error)")
        }
        let reference: (microsievertsPerHour: Double, sourceId: String?)
        do {
            reference = try CheckSourceReference.reference(typed: typedReference, registered: registered, serialNumber: serialNumber, on: day)
        } catch {
            throw .reference(error)
        }
        // The last station background the store holds; 0.10 μSv/h (±50 %) without one.
        let background = (try? store.backgroundTrend(limit: 1))?.last?.backgroundMicrosievertsPerHour ?? 0.10
        let check = InstrumentCheck.evaluate(serialNumber: serialNumber, reading: reading, referenceMicrosievertsPerHour: reference.microsievertsPerHour,
                                             background: background, tolerance: tolerance, actor: actor,
                                             takenAt: ScanStore.isoFormatter.string(from: Date()), sourceId: reference.sourceId)
        do {
            try store.addInstrumentCheck(check)
        } catch {
            throw .store("\(error)")
        }
        return check
    }
}
