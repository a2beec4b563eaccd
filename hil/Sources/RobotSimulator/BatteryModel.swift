/// The simulated robot's battery and what the robot draws from it. The defaults are the
/// controller's (`RobotControl.BatteryConfiguration`): a 48 V, 40 Ah pack (about
/// 1 900 Wh), 150 W standing, 600 J per metre driven, 2 000 J per metre of lift rise and
/// 5 J per degree turned. A scenario may make the true robot thirstier than the figures
/// the controller is configured with (`consumptionFactor`), as an ageing pack, cold or
/// soft ground would.
public struct BatterySettings: Sendable, Codable, Equatable {
    public var capacityWattHours = 1900.0
    public var initialChargePercent = 87.0
    public var idleWatts = 150.0
    public var driveJoulesPerMetre = 600.0
    public var liftJoulesPerMetre = 2000.0
    public var turnJoulesPerDegree = 5.0
    /// Every draw above is multiplied by this.
    public var consumptionFactor = 1.0
    /// The safety unit measures the pack's current (protocol 1.1 W7.9, `features` bit 3).
    public var currentMonitored = true

    public init() {}
}

/// The battery's state of charge, drawn down step by step. At 0 % the firmware's
/// under-voltage lockout takes motion power away (the computer and detector run on).
struct BatteryModel {
    var settings: BatterySettings
    private(set) var chargePercent: Double
    private(set) var joulesDrawn = 0.0
    /// The power drawn, filtered with a 1 s time constant (W7.9's one-second average).
    private(set) var averageWatts: Double

    init(settings: BatterySettings) {
        self.settings = settings
        chargePercent = min(100, max(0, settings.initialChargePercent))
        averageWatts = settings.idleWatts * settings.consumptionFactor
    }

    mutating func draw(seconds: Double, metresDriven: Double, degreesTurned: Double, liftRiseMetres: Double) {
        let s = settings
        let joules = (s.idleWatts * seconds + s.driveJoulesPerMetre * metresDriven + s.turnJoulesPerDegree * degreesTurned
            + s.liftJoulesPerMetre * liftRiseMetres) * s.consumptionFactor
        joulesDrawn += joules
        if seconds > 0 { averageWatts += (joules / seconds - averageWatts) * min(1, seconds / 1.0) }
        chargePercent = max(0, chargePercent - joules / (s.capacityWattHours * 3600) * 100)
    }

    /// Charged (or a fresh pack put in) to this level.
    mutating func set(chargePercent percent: Double) {
        chargePercent = min(100, max(0, percent))
    }

    var empty: Bool { chargePercent <= 0 }

    /// Open-circuit voltage of a 16-cell LiFePO4 pack, linear between 46 V empty and 54 V
    /// full: enough for a status register, not a cell model.
    var centivolts: UInt16 { UInt16((4600 + 8 * chargePercent).rounded()) }

    /// The current the battery block reports: the averaged power over the pack's voltage,
    /// in 0.1 A (W7.9).
    var currentDeciamperes: Int16 { Int16(clamping: Int((averageWatts / (Double(centivolts) / 100) * 10).rounded())) }

    /// The charge as the status register carries it (whole percent, rounded down, so a
    /// robot at 14.9 % reports 14).
    var reportedPercent: UInt16 { UInt16(chargePercent.rounded(.down)) }
}
