import Foundation

/// The daily check-source test of the detector: a Cs-137 check source in its holder on the
/// probe gives a known dose rate (the reference: the registered source's certificate,
/// decayed to the day, `CheckSourceReference`, or a typed value when none is registered); the
/// robot counts for a set time, and the probe's response is the net reading over the
/// reference. A response outside the tolerance means the probe has drifted (a failing
/// photomultiplier, a high voltage gone off, a damaged scintillator) and no scan may start
/// until it passes again (`ScanSession.create`). The check source is far above any
/// background (several μSv/h), so the background taken away is the last station
/// background the store holds, or 0.10 μSv/h if there is none, with its uncertainty
/// carried.
public struct InstrumentCheck: Sendable, Equatable, Codable {
    public var serialNumber: String
    public var takenAt: String
    public var referenceMicrosievertsPerHour: Double
    public var counts: UInt32
    public var seconds: Double
    public var grossMicrosievertsPerHour: Double
    public var backgroundMicrosievertsPerHour: Double
    /// Net reading over the reference (1 is a perfect probe), and its standard uncertainty.
    public var response: Double
    public var responseUncertainty: Double
    public var tolerance: Double
    public var passed: Bool
    public var actor: String
    /// The registered check source the reference came from (`CheckSourceReference`), decayed
    /// to the day; `nil` when the reference was typed in (no source registered).
    public var sourceId: String?

    /// The allowed departure of the response from 1 unless the configuration says otherwise:
    /// SN/T 1537 allows 20 % at k = 3 for the whole instrument; a day-to-day drift of a
    /// tenth is already a probe to look at.
    public static let defaultTolerance = 0.10

    /// Judges one check reading. `background` is the station background to take away.
    public static func evaluate(serialNumber: String, reading: DoseReading, referenceMicrosievertsPerHour reference: Double,
                                background: Double, tolerance: Double = defaultTolerance, actor: String, takenAt: String,
                                sourceId: String? = nil) -> InstrumentCheck {
        let gross = reading.grossDoseRate
        let net = gross - background
        let response = net / max(reference, 1e-9)
        // Counting of the check reading, and the background taken away known to ±50 %.
        let countingRelative = 1 / max(Double(reading.counts), 1).squareRoot()
        let uncertainty = (pow(gross * countingRelative, 2) + pow(0.5 * background, 2)).squareRoot() / max(reference, 1e-9)
        return InstrumentCheck(serialNumber: serialNumber, takenAt: takenAt, referenceMicrosievertsPerHour: reference, counts: reading.counts,
                               seconds: reading.seconds, grossMicrosievertsPerHour: gross, backgroundMicrosievertsPerHour: background,
                               response: response, responseUncertainty: uncertainty, tolerance: tolerance,
                               passed: abs(response - 1) <= tolerance && !reading.overload, actor: actor, sourceId: sourceId)
    }

    /// What an officer reads when a check fails or a scan is refused because of one.
    public var description: String {
        String(format: "the detector %@ read the check source %+.1f %% (response %.3f ± %.3f, reference %.3f μSv/h, net %.3f) on %@; "
               + "the tolerance is ±%.0f %%", serialNumber, 100 * (response - 1), response, responseUncertainty, referenceMicrosievertsPerHour,
               grossMicrosievertsPerHour - backgroundMicrosievertsPerHour, takenAt, 100 * tolerance)
    }

    /// The summary a scan's instrument record carries.
    public var summary: InstrumentCheckSummary {
        InstrumentCheckSummary(takenAt: takenAt, response: response, passed: passed)
    }
}

/// The last check-source test before a scan, as its instrument record keeps it.
public struct InstrumentCheckSummary: Sendable, Equatable, Codable {
    public var takenAt: String
    public var response: Double
    public var passed: Bool

    public init(takenAt: String, response: Double, passed: Bool) {
        self.takenAt = takenAt
        self.response = response
        self.passed = passed
    }
}
