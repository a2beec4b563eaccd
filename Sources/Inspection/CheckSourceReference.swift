import Foundation

/// The check source registered for a detector: its dose rate at the probe in its holder on
/// the certificate's date, carried forward by the nuclide's decay. With it registered, the
/// daily check-source test needs no number typed in: a typo, or a value chosen to make a
/// drifting probe pass, cannot set the reference the probe is judged against.
public struct CheckSourceReference: Sendable, Equatable, Codable {
    /// The detector the source was characterised on (the holder fixes the geometry).
    public var serialNumber: String
    /// The check source's own identifier, from its certificate.
    public var sourceId: String
    /// The dose rate at the probe in the holder on `referenceDate`, μSv/h.
    public var referenceMicrosievertsPerHour: Double
    /// The certificate's date, YYYYMMDD.
    public var referenceDate: UInt32
    /// The nuclide's half-life in days (Cs-137 unless said: 30.08 years, DDEP).
    public var halfLifeDays: Double
    public var registeredAt: String
    public var actor: String

    /// Cs-137's half-life, 30.08 a (DDEP / NNDC) in days.
    public static let caesium137HalfLifeDays = 30.08 * 365.25
    /// The allowed dose rates at the probe: the check source is far above any background.
    public static let allowedMicrosievertsPerHour: ClosedRange<Double> = 0.5...1000
    /// A typed reference may differ from the registered one by this much (rounding on a
    /// certificate copied by hand); beyond it the two disagree and the check is refused.
    public static let typedAgreement = 0.02

    public init(serialNumber: String, sourceId: String, referenceMicrosievertsPerHour: Double, referenceDate: UInt32,
                halfLifeDays: Double = caesium137HalfLifeDays, registeredAt: String, actor: String) {
        self.serialNumber = serialNumber
        self.sourceId = sourceId
        self.referenceMicrosievertsPerHour = referenceMicrosievertsPerHour
        self.referenceDate = referenceDate
        self.halfLifeDays = halfLifeDays
        self.registeredAt = registeredAt
        self.actor = actor
    }

    /// The dose rate the source gives on `day` (YYYYMMDD), decayed from the certificate's date.
    public func doseRate(on day: UInt32) -> Double {
        let days = Self.days(from: referenceDate, to: day) ?? 0
        return referenceMicrosievertsPerHour * pow(2, -days / halfLifeDays)
    }

    /// Days from one YYYYMMDD date to another (negative when `to` is earlier), or `nil` for
    /// a date that is not one.
    static func days(from: UInt32, to: UInt32) -> Double? {
        guard let a = date(from), let b = date(to) else { return nil }
        return b.timeIntervalSince(a) / 86_400
    }

    static func date(_ value: UInt32) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let parts = DateComponents(year: Int(value / 10_000), month: Int(value / 100 % 100), day: Int(value % 100))
        guard let date = calendar.date(from: parts), calendar.dateComponents([.year, .month, .day], from: date) == parts else { return nil }
        return date
    }

    /// Why a registration or a check's reference is refused.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case outOfRange(Double)
        case badDate(UInt32, today: UInt32)
        case badHalfLife(Double)
        case noReference(serialNumber: String)
        case disagrees(typed: Double, registered: Double, sourceId: String)

        public var description: String {
            switch self {
            case .outOfRange(let value):
                return String(format: "referenceMicrosievertsPerHour %g is out of range; allowed %g to %g (the check source's dose rate at "
                              + "the probe, from its certificate)", value, allowedMicrosievertsPerHour.lowerBound, allowedMicrosievertsPerHour.upperBound)
            case .badDate(let value, let today):
                return "referenceDate \(value) is not a date as YYYYMMDD between 1970 and today (\(today))"
            case .badHalfLife(let value):
                return String(format: "halfLifeDays %g is out of range; allowed 30 to 1 000 000 (a check source lasts years; Cs-137 is %.0f)",
                              value, CheckSourceReference.caesium137HalfLifeDays)
            case .noReference(let serial):
                return "no check source is registered for the detector \(serial): register its certificate (PUT /api/v1/instrument/check-source, "
                    + "supervisor; robotctl check-source-register) or give referenceMicrosievertsPerHour"
            case .disagrees(let typed, let registered, let sourceId):
                return String(format: "the typed reference %.3f μSv/h disagrees with the registered check source %@ (%.3f μSv/h today, decay "
                              + "included) by more than %.0f %%: leave the reference out, or register the new source's certificate",
                              typed, sourceId, registered, 100 * typedAgreement)
            }
        }
    }

    /// Checks a registration before it is stored.
    public func validated(today: UInt32) throws(Problem) -> CheckSourceReference {
        guard referenceMicrosievertsPerHour.isFinite, Self.allowedMicrosievertsPerHour.contains(referenceMicrosievertsPerHour) else {
            throw .outOfRange(referenceMicrosievertsPerHour)
        }
        guard let days = Self.days(from: referenceDate, to: today), days >= 0, referenceDate >= 19_700_101 else {
            throw .badDate(referenceDate, today: today)
        }
        guard halfLifeDays.isFinite, (30...1_000_000).contains(halfLifeDays) else { throw .badHalfLife(halfLifeDays) }
        return self
    }

    /// The reference a check is judged against on `day`: the registered source's, decayed,
    /// when there is one (a typed value must then agree with it); else the typed value.
    public static func reference(typed: Double?, registered: CheckSourceReference?, serialNumber: String,
                                 on day: UInt32) throws(Problem) -> (microsievertsPerHour: Double, sourceId: String?) {
        if let typed {
            guard typed.isFinite, allowedMicrosievertsPerHour.contains(typed) else { throw .outOfRange(typed) }
        }
        guard let registered else {
            guard let typed else { throw .noReference(serialNumber: serialNumber) }
            return (typed, nil)
        }
        let today = registered.doseRate(on: day)
        if let typed, abs(typed - today) > typedAgreement * today {
            throw .disagrees(typed: typed, registered: today, sourceId: registered.sourceId)
        }
        return (today, registered.sourceId)
    }
}
