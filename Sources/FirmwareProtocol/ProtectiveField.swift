/// H9.1 (`firmware-protocol/README.md` §9.2): the smallest protective field a chassis with a
/// protective-field scanner may use, so that a person walking at up to K who enters it is
/// not reached before the chassis stands. The firmware's fields are at least these; the
/// simulator uses exactly these, and the controller draws them for the officer.
public enum ProtectiveFieldMinimum {
    /// K: a walking person (ISO 13855).
    public static let approachSpeedMetresPerSecond = 1.6
    /// Z: the added margin.
    public static let marginMetres = 0.10
    /// How far the warning field reaches beyond the protective field, at least.
    public static let warningBeyondMetres = 1.0
    /// The longest response time T allowed: from an object entering the field to the drive
    /// decelerating.
    public static let maximumResponseSeconds = 0.10

    /// Driving straight at `speed` (m/s, either sign): the reach beyond the outline ahead
    /// (in the direction of travel) and to each side, metres.
    public static func driving(speedMetresPerSecond speed: Double, responseSeconds: Double = maximumResponseSeconds,
                               quickStopMetresPerSecond2: Double = 1.0) -> (ahead: Double, side: Double) {
        let v = abs(speed)
        let toStandstill = responseSeconds + v / quickStopMetresPerSecond2
        let side = approachSpeedMetresPerSecond * toStandstill + marginMetres
        return (v * responseSeconds + v * v / (2 * quickStopMetresPerSecond2) + side, side)
    }

    /// Standing, or turning on the spot with the outermost corner at `cornerSpeed` and
    /// `stopSeconds` to standstill after the response: the reach all round, metres.
    public static func allRound(cornerSpeedMetresPerSecond cornerSpeed: Double = 0, stopSeconds: Double = 0,
                                responseSeconds: Double = maximumResponseSeconds) -> Double {
        let toStandstill = responseSeconds + stopSeconds
        return (abs(cornerSpeed) + approachSpeedMetresPerSecond) * toStandstill + marginMetres
    }
}
