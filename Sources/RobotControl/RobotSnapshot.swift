import FirmwareProtocol

/// Where a device stands, after ros2_control's hardware lifecycle.
public enum DeviceLifecycle: String, Sendable, Equatable {
    /// Not heard from yet.
    case unconfigured
    /// Answering, not operating (a drive not enabled, a detector without valid data).
    case inactive
    /// Operating.
    case active
    /// Link lost or in fault; only what needs this device is stopped.
    case error
}

/// The loop's view of the robot after a tick. Plain values only, so publishing it
/// costs a copy and no allocation.
public struct RobotSnapshot: Sendable {
    public var tick: UInt64 = 0
    public var xMetres = 0.0
    public var yMetres = 0.0
    public var headingDegrees = 0.0
    public var speedMetresPerSecond = 0.0
    public var chassisState: DriveState = .notReadyToSwitchOn
    public var chassisMoving = false
    public var liftHeightMetres = 0.0
    public var liftState: DriveState = .notReadyToSwitchOn
    public var liftHomed = false
    public var liftMoving = false
    public var instrumentDoseRateMicrosievertsPerHour = 0.0
    public var detectorOverload = false
    public var detectorAvailable = false
    public var motionPowerOn = false
    public var estopButton = false
    /// The battery as the safety unit reports it; nil until its status has been read.
    public var batteryChargePercent: Double?
    public var batteryVolts: Double?
    /// The pack's current (protocol 1.1 W7.9, + discharging) and the power it gives, as the
    /// safety unit last reported them; nil without a battery monitor.
    public var batteryCurrentAmperes: Double?
    public var batteryWatts: Double?
    /// What the robot draws standing still (chassis and lift at rest), averaged over about
    /// the last 10 s of standing; nil until 5 s of it have been measured.
    public var standingWatts: Double?
    public var stopCause: StopCause?
    /// Software e-stop requests the loop has acted on (see `ControlLoop.requestSoftwareEstop`).
    public var estopRequestsServed: UInt64 = 0
    /// The tick on which the newest software e-stop request was latched.
    public var estopServedAtTick: UInt64 = 0
    /// Halt requests the loop has acted on (see `ControlLoop.requestHalt`).
    public var haltRequestsServed: UInt64 = 0
    /// The tick on which the newest halt request was acted on.
    public var haltServedAtTick: UInt64 = 0
    public var linkUp = (safety: false, chassis: false, lift: false, detector: false)
    public var lifecycle = (safety: DeviceLifecycle.unconfigured, chassis: DeviceLifecycle.unconfigured,
                            lift: DeviceLifecycle.unconfigured, detector: DeviceLifecycle.unconfigured)
    /// Count rate over about the last second from the detector's counts and time base,
    /// dead-time corrected, with its 1 σ Poisson uncertainty; and the same as a dose rate.
    public var countRatePerSecond = 0.0
    public var countRateUncertaintyPerSecond = 0.0
    public var doseRateMicrosievertsPerHour = 0.0
    public var doseRateUncertaintyMicrosievertsPerHour = 0.0
    public var deadmanArmed = false
    /// The protective-field scanner (H9), whether a chassis move waits for it to clear, and
    /// the protective stops and slow-downs so far.
    public var fieldScanner = FieldScannerState.absent
    public var heldByProtectiveField = false
    public var protectiveStops: UInt64 = 0
    public var fieldSlowdowns: UInt64 = 0
    public var overruns: UInt64 = 0
    public var lastWakeLatencyMicroseconds: UInt64 = 0

    public init() {}
}
