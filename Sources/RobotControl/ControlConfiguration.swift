import FirmwareProtocol

/// An axis-aligned rectangle on the yard plane the chassis must not enter (a
/// container footprint grown by the keep-out distance), in metres.
public struct KeepOutZone: Sendable, Equatable, Codable {
    public var minX: Double
    public var minY: Double
    public var maxX: Double
    public var maxY: Double

    public init(minX: Double, minY: Double, maxX: Double, maxY: Double) {
        self.minX = minX
        self.minY = minY
        self.maxX = maxX
        self.maxY = maxY
    }

    public func contains(x: Double, y: Double) -> Bool {
        x > minX && x < maxX && y > minY && y < maxY
    }

    /// How far the straight segment from (x0, y0) to (x1, y1) runs inside the zone, in metres.
    public func lengthInside(fromX x0: Double, fromY y0: Double, toX x1: Double, toY y1: Double) -> Double {
        guard let (t0, t1) = clip(x0, y0, x1, y1) else { return 0 }
        return (t1 - t0) * ((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)).squareRoot()
    }

    /// True if the straight segment from (x0, y0) to (x1, y1) enters the zone.
    public func intersects(fromX x0: Double, fromY y0: Double, toX x1: Double, toY y1: Double) -> Bool {
        clip(x0, y0, x1, y1) != nil
    }

    /// Liang-Barsky clipping of the segment against the rectangle: the part inside as
    /// parameters along the segment, or nil if none is.
    private func clip(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) -> (Double, Double)? {
        var t0 = 0.0
        var t1 = 1.0
        let dx = x1 - x0
        let dy = y1 - y0
        for (p, q) in [(-dx, x0 - minX), (dx, maxX - x0), (-dy, y0 - minY), (dy, maxY - y0)] {
            if p == 0 {
                if q <= 0 { return nil }
            } else {
                let r = q / p
                if p < 0 { t0 = max(t0, r) } else { t1 = min(t1, r) }
                if t0 >= t1 { return nil }
            }
        }
        return (t0, t1)
    }
}

/// Everything the control loop needs to know about the robot and its limits.
/// Defaults are the robot described in `docs/domain.md`, Robot.
public struct ControlConfiguration: Sendable, Equatable {
    /// Loop rate; every tick reads the newest state, runs safety, and queues set-points.
    public var loopRateHertz: Double = 100
    /// Try SCHED_FIFO at this priority and lock memory; the loop runs on without them.
    public var realtimePriority: Int32 = 80

    public var chassisMaxSpeedMetresPerSecond = 0.5
    public var chassisAccelerationMetresPerSecond2 = 0.5
    public var turnRateDegreesPerSecond = 30.0
    public var turnAccelerationDegreesPerSecond2 = 90.0
    public var chassisToleranceMetres = 0.005
    public var headingToleranceDegrees = 0.5
    /// Longest single walk accepted, metres.
    public var maximumWalkMetres = 200.0

    /// Heights the lift may be sent to; inside the firmware's 0.3-2.8 m so that the end
    /// switches are only ever met by homing or by a fault.
    public var liftMinimumMetres = 0.35
    public var liftMaximumMetres = 2.75
    public var liftMaxSpeedMetresPerSecond = 0.2
    public var liftAccelerationMetresPerSecond2 = 0.4
    public var liftToleranceMetres = 0.003
    /// Where the lift goes before the daemon exits.
    public var liftParkMetres = 0.5

    /// Zones the chassis must not enter (container footprints grown by the keep-out distance).
    public var keepOutZones: [KeepOutZone] = []

    /// Failed polls in a row after which a unit's link counts as lost.
    public var lostLinkMissedPolls = 5
    /// Status poll periods per unit, milliseconds.
    public var safetyPollMilliseconds = 20
    public var chassisPollMilliseconds = 20
    public var liftPollMilliseconds = 20
    public var detectorPollMilliseconds = 50
    /// The range pair's poll (G9), when the chassis has one; 0 does not poll it.
    public var rangePollMilliseconds = 100
    /// The battery's current (W7.9), when the safety unit measures it; 0 does not poll it.
    /// Not stretched by the line budget: at 1 s it takes well under 1 % of the line.
    public var batteryPollMilliseconds = 1000
    /// Where the range pair's sensors sit on the robot.
    public var rangePair = RangePairGeometry()
    /// What the loop does when the protective-field scanner sees someone (H9).
    public var people = PeoplePolicy()
    /// Firmware watchdog period, and how often the loop refreshes it.
    public var watchdogTimeoutMilliseconds: UInt16 = 500
    public var watchdogRefreshMilliseconds = 100
    /// Stop if the command side's keep-alive is older than this while armed.
    public var deadmanTimeoutSeconds = 1.0
    /// Detector dead time used to correct count rates, seconds.
    public var detectorDeadTimeSeconds = 2e-6
    /// The battery and what the robot draws from it, for the scan's energy budget.
    public var battery = BatteryConfiguration()
    /// The robot's pose at start (its dock), given to a 1.1 chassis that reports no pose
    /// yet (`poseSet` clear). Nil: the chassis's own frame is used as the yard frame.
    public var startPose: StartPose?

    public init() {}

    public var tickNanoseconds: UInt64 { UInt64((1e9 / loopRateHertz).rounded()) }

    /// Problems with the configuration, each naming the field and what is allowed.
    public func problems() -> [String] {
        var found: [String] = []
        found += battery.problems()
        found += rangePair.problems()
        found += people.problems()
        if batteryPollMilliseconds != 0 && !(200...10_000).contains(batteryPollMilliseconds) {
            found.append("batteryPollMilliseconds \(batteryPollMilliseconds) must be 0 (off) or 200 to 10000")
        }
        if rangePollMilliseconds < 0 || rangePollMilliseconds > 1000 { found.append("rangePollMilliseconds \(rangePollMilliseconds) must be 0 (off) to 1000") }
        if !(1...1000).contains(loopRateHertz) { found.append("loopRateHertz \(loopRateHertz) must be 1 to 1000") }
        if !(0.01...0.5).contains(chassisMaxSpeedMetresPerSecond) { found.append("chassisMaxSpeedMetresPerSecond must be 0.01 to 0.5 (firmware limit)") }
        if !(0.01...0.5).contains(chassisAccelerationMetresPerSecond2) { found.append("chassisAccelerationMetresPerSecond2 must be 0.01 to 0.5") }
        if !(0.3...2.8).contains(liftMinimumMetres) || !(0.3...2.8).contains(liftMaximumMetres) || liftMinimumMetres >= liftMaximumMetres {
            found.append("lift range \(liftMinimumMetres)-\(liftMaximumMetres) m must lie inside the firmware's 0.3-2.8 m, minimum below maximum")
        }
        // Plain comparisons: a range literal would trap if the minimum were above the maximum.
        if liftParkMetres < liftMinimumMetres || liftParkMetres > liftMaximumMetres {
            found.append("liftParkMetres must lie inside the lift range")
        }
        if !(0.001...0.2).contains(liftMaxSpeedMetresPerSecond) { found.append("liftMaxSpeedMetresPerSecond must be 0.001 to 0.2") }
        if lostLinkMissedPolls < 1 { found.append("lostLinkMissedPolls must be at least 1") }
        if !(50...10_000).contains(Int(watchdogTimeoutMilliseconds)) { found.append("watchdogTimeoutMilliseconds must be 50 to 10000") }
        if watchdogRefreshMilliseconds * 2 > Int(watchdogTimeoutMilliseconds) {
            found.append("watchdogRefreshMilliseconds must be at most half of watchdogTimeoutMilliseconds")
        }
        if deadmanTimeoutSeconds <= 0 { found.append("deadmanTimeoutSeconds must be above 0") }
        if let pose = startPose, abs(pose.xMetres) > 1000 || abs(pose.yMetres) > 1000 || abs(pose.headingDegrees) > 180 {
            found.append("startPose must lie within ±1000 m and ±180° (the chassis pose block's range)")
        }
        return found
    }
}
