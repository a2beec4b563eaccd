import FirmwareProtocol
/// The simulated robot's hardware: limits and the detector's instrument record.
/// Defaults are those of `docs/domain.md`, Robot and Detector.
public struct RobotSettings: Sendable, Codable, Equatable {
    public var chassisMaxSpeedMetresPerSecond = 0.5
    public var chassisAccelerationMetresPerSecond2 = 0.5
    /// Angular acceleration for turns on the spot.
    public var turnAccelerationDegreesPerSecond2 = 90.0
    /// One-sigma odometry drift per metre travelled.
    public var odometryNoiseMetresPerMetre = 0.002
    /// Systematic odometry error: the chassis counts this fraction more distance than it
    /// drives (worn or soft tyres). 0.01 reads 1 % long, so it stops 1 % short of a target.
    public var odometryScaleError = 0.0
    /// The side-facing range pair (protocol 1.1, G9); nil for a chassis without one.
    public var rangePair: RangePairSettings? = RangePairSettings()
    /// The chassis outline (what a person could touch): forward of the reference point,
    /// behind it, and each side.
    public var outlineForwardMetres = 0.45
    public var outlineRearMetres = 0.45
    public var outlineHalfWidthMetres = 0.30
    /// The protective-field scanner (protocol 1.1, H9); nil for a chassis without one.
    public var fieldScanner: FieldScannerSettings? = FieldScannerSettings()
    public var liftMinimumMetres = 0.3
    public var liftMaximumMetres = 2.8
    public var liftMaxSpeedMetresPerSecond = 0.2
    public var liftAccelerationMetresPerSecond2 = 0.4
    public var liftHomingSpeedMetresPerSecond = 0.1
    /// Where the lift's limit switches close: outside the set-point range
    /// `liftMinimumMetres...liftMaximumMetres`, so a legal set-point never reaches one
    /// (protocol 1.1, L6.1). Homing defines the lower one as 0.290 m.
    public var liftLowerSwitchMetres = 0.29
    public var liftUpperSwitchMetres = 2.81
    /// Deceleration when a drive leaves operation enabled or quick-stops (D5.2).
    public var chassisQuickStopMetresPerSecond2 = 1.0
    public var turnQuickStopDegreesPerSecond2 = 180.0
    /// The chassis powers up at a dock it can see, so it knows its yard pose at power-up
    /// (`poseSet` = 1, protocol 1.1 Q9.1). A reboot mid-yard comes up at (0, 0, 0).
    public var poseKnownAtPowerUp = true
    /// The protocol minor the units report. 0 makes a 1.0 firmware as far as the
    /// controller can tell: no boot or pose block (exception 2), no boot interlock (the
    /// first refresh powers the drives), no `poseSet` or `bootInterlock` flags.
    public var protocolMinor: UInt16 = ProtocolVersion.current.minor
    /// Departures from the protocol brought back on purpose (`Deviation`); none by default.
    public var deviations: Set<Deviation> = []
    /// How close the detector head may come to a container wall before the bumper trips.
    public var bumperMarginMetres = 0.02
    /// Where the probe sits from the chassis' reference point (the pose it reports), in
    /// the robot's frame: forward along its heading, to its right, and above the lift's
    /// height. All zero is the old idealisation of a probe at the reference point.
    public var probeForwardMetres = 0.0
    public var probeRightMetres = 0.0
    public var probeUpMetres = 0.0
    public var detector = DetectorSettings()
    public var battery = BatterySettings()
    public var firmwareVersion: UInt16 = 0x0100

    public init() {}
}

/// Two distance sensors on the robot's right side, beams square to its heading (G9).
public struct RangePairSettings: Sendable, Codable, Equatable {
    /// Where each sensor sits from the reference point, forward along the heading.
    public var frontForwardMetres = 0.30
    public var rearForwardMetres = -0.30
    /// How far right of the reference point both sensors sit.
    public var rightMetres = 0.30
    public var maximumRangeMetres = 6.0
    /// One-sigma noise of each distance.
    public var noiseMetres = 0.004
    /// The pair reports a fault of its own (window dirty): both invalid, `sensorFault` set.
    public var faulted = false
    /// The front sensor reads this much long (a knocked mount, a bad calibration).
    public var frontBiasMetres = 0.0

    public init() {}
}

public struct DetectorSettings: Sendable, Codable, Equatable {
    public var serialNumber = "SIM-GD-0001"
    public var calibrationFactor = 1.0
    public var calibrationDate: UInt32 = 20260301
    public var calibrationExpiry: UInt32 = 20270301
    public var sensitivityCountsPerSecondPerMicrosievertPerHour = 300.0
    public var deadTimeMicroseconds = 2.0
    /// A paralysable chain (a scintillator's) reads low in strong fields, where the
    /// controller's non-paralysable correction assumes otherwise.
    public var deadTimeParalysable = false
    /// The probe's answer to spectra other than its Cs-137 calibration.
    public var response = EnergyResponse()
    /// The probe's sensitivity has drifted since its calibration by this fraction (−0.2
    /// reads 20 % low): a daily check-source test finds it.
    public var responseDriftFraction = 0.0
    public var timeConstantSeconds = 2.0
    public var rangeMaxMicrosievertsPerHour = 1_000_000.0

    public init() {}
}

/// The protective-field scanner and the chassis outline it protects (H9). The fields are
/// the protocol's minimum sizes (H9.1), computed from the measured speed each step; the
/// simulated scanner sees people (`WalkingPerson`), not containers: a real installation's
/// field sets leave out the wall the robot works along.
public struct FieldScannerSettings: Sendable, Codable, Equatable {
    /// From an object entering the protective field to the drive decelerating (H9.1's T;
    /// K, Z and the warning field's reach are the protocol's, `ProtectiveFieldMinimum`).
    public var responseSeconds = ProtectiveFieldMinimum.maximumResponseSeconds
    /// The scanner reports a fault (H9.4): the chassis does not move.
    public var faulted = false

    public init() {}
}
