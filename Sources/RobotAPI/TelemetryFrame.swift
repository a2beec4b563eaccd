import Foundation

// The wire types of robotd's API, shared by the server (which encodes them), the client
// (`CommandClient`, robotctl) and the tests (which decode them): one definition, so the
// two sides cannot drift apart. Field names carry their units. The frame's optional
// top-level and safety, lease and store fields are sent as JSON null when empty (a reader
// can tell "none" from "not sent"); the optional notes of a scan's progress and a device's
// drive state are left out when empty, as they always were. A number that is not finite
// (a detector with a zero sensitivity) is sent as the string "nan", "inf" or "-inf":
// decode with `APICoding.decoder()`.

/// The JSON coding the API uses on both sides.
public enum APICoding {
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// What a device is doing, as the loop sees it.
public enum DeviceLifecycle: String, Codable, Sendable, CaseIterable {
    /// Not heard from yet.
    case unconfigured
    /// Answering, not operating (a drive not enabled, a detector without valid data).
    case inactive
    /// Operating.
    case active
    /// Link lost or in fault.
    case error
}

/// Why the robot stopped (the safety supervisor's latched cause).
public enum StopCauseCode: String, Codable, Sendable, CaseIterable {
    case hardwareEstop, softwareEstop, lostLink, watchdogExpired, watchdogWritesFailing, bumper,
         liftLimitSwitch, liftOutOfRange, detectorOverload, deadman, driveFault, firmwareRestarted
}

/// The protective-field scanner's state: none fitted, clear, something in the warning
/// field (the robot slows), something in the protective field (the chassis does not
/// move), or the scanner reports a fault (the chassis does not move).
public enum FieldScannerCode: String, Codable, Sendable, CaseIterable {
    case absent, clear, warning, protective, fault
}

/// The `type` of `POST /api/v1/commands`: what the robot is asked to do.
public enum CommandType: String, Codable, Sendable, CaseIterable {
    case walk, walkTo, turn, turnTo, lift, home, measure, resetFault, stop
}

/// A scan as the API lists it: planned (not started), running, paused, interrupted (the
/// controller stopped while it ran: resumable), done, aborted, refused (no verdict could
/// be computed).
public enum ScanState: String, Codable, Sendable, CaseIterable {
    case planned, running, paused, interrupted, done, aborted, refused
}

/// A scan's phase.
public enum ScanPhase: String, Codable, Sendable, CaseIterable {
    case starting, background, survey, computing, done, aborted, failed
}

/// The robot's state: `GET /api/v1/state`, and the `data` of every telemetry message.
public struct TelemetryFrame: Codable, Sendable, Equatable {
    public struct Pose: Codable, Sendable, Equatable {
        public var xMetres: Double
        public var yMetres: Double
        public var headingDegrees: Double
        public var speedMetresPerSecond: Double
        public var moving: Bool
        public init(xMetres: Double, yMetres: Double, headingDegrees: Double, speedMetresPerSecond: Double, moving: Bool) {
            self.xMetres = xMetres
            self.yMetres = yMetres
            self.headingDegrees = headingDegrees
            self.speedMetresPerSecond = speedMetresPerSecond
            self.moving = moving
        }
    }

    public struct Lift: Codable, Sendable, Equatable {
        public var heightMetres: Double
        public var homed: Bool
        public var moving: Bool
        /// The lift drive's CiA 402 state ("operationEnabled", "fault", ...).
        public var state: String
        public init(heightMetres: Double, homed: Bool, moving: Bool, state: String) {
            self.heightMetres = heightMetres
            self.homed = homed
            self.moving = moving
            self.state = state
        }
    }

    public struct Dose: Codable, Sendable, Equatable {
        public var microsievertsPerHour: Double
        public var uncertaintyMicrosievertsPerHour: Double
        public var countRatePerSecond: Double
        public var instrumentMicrosievertsPerHour: Double
        public var overload: Bool
        public init(microsievertsPerHour: Double, uncertaintyMicrosievertsPerHour: Double, countRatePerSecond: Double,
                    instrumentMicrosievertsPerHour: Double, overload: Bool) {
            self.microsievertsPerHour = microsievertsPerHour
            self.uncertaintyMicrosievertsPerHour = uncertaintyMicrosievertsPerHour
            self.countRatePerSecond = countRatePerSecond
            self.instrumentMicrosievertsPerHour = instrumentMicrosievertsPerHour
            self.overload = overload
        }
    }

    public struct Device: Codable, Sendable, Equatable {
        public var lifecycle: DeviceLifecycle
        public var linkUp: Bool
        /// The drive's CiA 402 state, for the chassis (the lift's is under `lift`).
        public var state: String?
        /// How old the unit's polled status had become, at the 99th percentile, when the
        /// next copy replaced it (milliseconds; nil on a bus that does not measure it).
        public var statusAgeP99Milliseconds: Double?
        public init(lifecycle: DeviceLifecycle, linkUp: Bool, state: String? = nil, statusAgeP99Milliseconds: Double? = nil) {
            self.lifecycle = lifecycle
            self.linkUp = linkUp
            self.state = state
            self.statusAgeP99Milliseconds = statusAgeP99Milliseconds
        }
    }

    public struct Devices: Codable, Sendable, Equatable {
        public var safety: Device
        public var chassis: Device
        public var lift: Device
        public var detector: Device
        public init(safety: Device, chassis: Device, lift: Device, detector: Device) {
            self.safety = safety
            self.chassis = chassis
            self.lift = lift
            self.detector = detector
        }
    }

    public struct Safety: Codable, Sendable, Equatable {
        public var stopped: Bool
        public var cause: StopCauseCode?
        /// The cause in words, with what to do.
        public var message: String?
        public var estopButton: Bool
        public var motionPowerOn: Bool
        public var deadmanArmed: Bool
        /// The battery as the safety unit reports it (null until read).
        public var batteryChargePercent: Double?
        public var batteryVolts: Double?
        /// The power the robot draws now, and standing still (averaged over about 10 s),
        /// from the pack's current (protocol 1.1 W7.9); null without a current sensor.
        public var batteryWatts: Double?
        public var standingWatts: Double?
        public init(stopped: Bool, cause: StopCauseCode?, message: String?, estopButton: Bool, motionPowerOn: Bool, deadmanArmed: Bool,
                    batteryChargePercent: Double? = nil, batteryVolts: Double? = nil, batteryWatts: Double? = nil, standingWatts: Double? = nil) {
            self.batteryChargePercent = batteryChargePercent
            self.batteryVolts = batteryVolts
            self.batteryWatts = batteryWatts
            self.standingWatts = standingWatts
            self.stopped = stopped
            self.cause = cause
            self.message = message
            self.estopButton = estopButton
            self.motionPowerOn = motionPowerOn
            self.deadmanArmed = deadmanArmed
        }

        enum CodingKeys: String, CodingKey { case stopped, cause, message, estopButton, motionPowerOn, deadmanArmed, batteryChargePercent, batteryVolts, batteryWatts, standingWatts }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(stopped, forKey: .stopped)
            try c.encode(cause, forKey: .cause)
            try c.encode(message, forKey: .message)
            try c.encode(estopButton, forKey: .estopButton)
            try c.encode(motionPowerOn, forKey: .motionPowerOn)
            try c.encode(deadmanArmed, forKey: .deadmanArmed)
            try c.encode(batteryChargePercent, forKey: .batteryChargePercent)
            try c.encode(batteryVolts, forKey: .batteryVolts)
            try c.encode(batteryWatts, forKey: .batteryWatts)
            try c.encode(standingWatts, forKey: .standingWatts)
        }
    }

    public struct LoopTiming: Codable, Sendable, Equatable {
        public var ticks: UInt64
        public var overruns: UInt64
        public var wakeLatencyP99Microseconds: UInt64
        public var wakeLatencyMaxMicroseconds: UInt64
        public init(ticks: UInt64, overruns: UInt64, wakeLatencyP99Microseconds: UInt64, wakeLatencyMaxMicroseconds: UInt64) {
            self.ticks = ticks
            self.overruns = overruns
            self.wakeLatencyP99Microseconds = wakeLatencyP99Microseconds
            self.wakeLatencyMaxMicroseconds = wakeLatencyMaxMicroseconds
        }
    }

    public struct Lease: Codable, Sendable, Equatable {
        public var held: Bool
        public var user: String?
        public var client: String?
        public var stale: Bool
        public init(held: Bool, user: String?, client: String?, stale: Bool) {
            self.held = held
            self.user = user
            self.client = client
            self.stale = stale
        }

        enum CodingKeys: String, CodingKey { case held, user, client, stale }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(held, forKey: .held)
            try c.encode(user, forKey: .user)
            try c.encode(client, forKey: .client)
            try c.encode(stale, forKey: .stale)
        }
    }

    public struct Store: Codable, Sendable, Equatable {
        public var diskLow: Bool
        /// Free space where the store is; null when it cannot be read.
        public var freeMegabytes: Int64?
        public init(diskLow: Bool, freeMegabytes: Int64?) {
            self.diskLow = diskLow
            self.freeMegabytes = freeMegabytes
        }

        enum CodingKeys: String, CodingKey { case diskLow, freeMegabytes }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(diskLow, forKey: .diskLow)
            try c.encode(freeMegabytes, forKey: .freeMegabytes)
        }
    }

    public struct ScanProgress: Codable, Sendable, Equatable {
        public var phase: ScanPhase
        public var completedPoints: Int
        public var totalPoints: Int
        public var backgroundReadings: Int
        public var paused: Bool
        /// A safety stop waiting for an officer's reset: the cause, in words.
        public var waitingForReset: String?
        /// Why the scan paused, when not by an officer's pause.
        public var pausedReason: String?
        /// What the scan did that an officer should know.
        public var note: String?
        public var etaSeconds: Double
        public init(phase: ScanPhase, completedPoints: Int, totalPoints: Int, backgroundReadings: Int, paused: Bool,
                    waitingForReset: String?, pausedReason: String?, note: String?, etaSeconds: Double) {
            self.phase = phase
            self.completedPoints = completedPoints
            self.totalPoints = totalPoints
            self.backgroundReadings = backgroundReadings
            self.paused = paused
            self.waitingForReset = waitingForReset
            self.pausedReason = pausedReason
            self.note = note
            self.etaSeconds = etaSeconds
        }
    }

    public struct Scan: Codable, Sendable, Equatable {
        public var id: String
        public var containerNumber: String
        public var progress: ScanProgress
        public init(id: String, containerNumber: String, progress: ScanProgress) {
            self.id = id
            self.containerNumber = containerNumber
            self.progress = progress
        }
    }

    /// A field round the robot in its own frame: metres from the reference point ahead,
    /// behind and to each side.
    public struct FieldExtent: Codable, Sendable, Equatable {
        public var frontMetres: Double
        public var rearMetres: Double
        public var sideMetres: Double
        public init(frontMetres: Double, rearMetres: Double, sideMetres: Double) {
            self.frontMetres = frontMetres
            self.rearMetres = rearMetres
            self.sideMetres = sideMetres
        }
    }

    /// The protective-field scanner (protocol 1.1 H9) and what it did to the chassis.
    public struct People: Codable, Sendable, Equatable {
        public var scanner: FieldScannerCode
        /// A chassis move is stopped and waits for the protective field to clear.
        public var held: Bool
        /// Protective stops and warning-field slow-downs since robotd started.
        public var protectiveStops: UInt64
        public var slowdowns: UInt64
        /// The protective field H9.1 asks for at the present speed, and the warning field
        /// (that, 1 m further): for the top view; null without a scanner.
        public var protectiveField: FieldExtent?
        public var warningField: FieldExtent?
        public init(scanner: FieldScannerCode = .absent, held: Bool = false, protectiveStops: UInt64 = 0, slowdowns: UInt64 = 0,
                    protectiveField: FieldExtent? = nil, warningField: FieldExtent? = nil) {
            self.scanner = scanner
            self.held = held
            self.protectiveStops = protectiveStops
            self.slowdowns = slowdowns
            self.protectiveField = protectiveField
            self.warningField = warningField
        }
    }

    public var tick: UInt64
    public var pose: Pose
    public var lift: Lift
    public var dose: Dose
    public var devices: Devices
    public var safety: Safety
    public var loop: LoopTiming
    public var lease: Lease
    public var store: Store
    public var people: People
    /// The scan under way, or null.
    public var scan: Scan?

    public init(tick: UInt64, pose: Pose, lift: Lift, dose: Dose, devices: Devices, safety: Safety, loop: LoopTiming,
                lease: Lease, store: Store, people: People = People(), scan: Scan?) {
        self.tick = tick
        self.pose = pose
        self.lift = lift
        self.dose = dose
        self.devices = devices
        self.safety = safety
        self.loop = loop
        self.lease = lease
        self.store = store
        self.people = people
        self.scan = scan
    }

    enum CodingKeys: String, CodingKey { case tick, pose, lift, dose, devices, safety, loop, lease, store, people, scan }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tick, forKey: .tick)
        try c.encode(pose, forKey: .pose)
        try c.encode(lift, forKey: .lift)
        try c.encode(dose, forKey: .dose)
        try c.encode(devices, forKey: .devices)
        try c.encode(safety, forKey: .safety)
        try c.encode(loop, forKey: .loop)
        try c.encode(lease, forKey: .lease)
        try c.encode(store, forKey: .store)
        try c.encode(people, forKey: .people)
        try c.encode(scan, forKey: .scan)
    }
}
