/// Safety controller status (unit 1, input registers 16-21).
public struct SafetyStatus: RegisterBlock {
    public static let spec = RegisterMap.safety.block("status")!

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let estopButton = Flags(rawValue: 1 << 0)
        public static let estopLatched = Flags(rawValue: 1 << 1)
        public static let watchdogExpired = Flags(rawValue: 1 << 2)
        public static let motionPowerOn = Flags(rawValue: 1 << 3)
        public static let softwareEstop = Flags(rawValue: 1 << 4)
        public static let beaconOn = Flags(rawValue: 1 << 5)
        public static let buzzerOn = Flags(rawValue: 1 << 6)
        /// Protocol 1.1: the chain has been open since power-up and no reset has closed it.
        public static let bootInterlock = Flags(rawValue: 1 << 7)
    }

    public var flags: Flags
    public var watchdogRemainingMilliseconds: UInt16
    /// Hundredths of a volt.
    public var batteryCentivolts: UInt16
    public var batteryChargePercent: UInt16
    public var uptimeMilliseconds: UInt32

    public init(flags: Flags, watchdogRemainingMilliseconds: UInt16, batteryCentivolts: UInt16,
                batteryChargePercent: UInt16, uptimeMilliseconds: UInt32) {
        self.flags = flags
        self.watchdogRemainingMilliseconds = watchdogRemainingMilliseconds
        self.batteryCentivolts = batteryCentivolts
        self.batteryChargePercent = batteryChargePercent
        self.uptimeMilliseconds = uptimeMilliseconds
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        flags = Flags(rawValue: r[0])
        watchdogRemainingMilliseconds = r[1]
        batteryCentivolts = r[2]
        batteryChargePercent = r[3]
        uptimeMilliseconds = RegisterWords.u32(r, 4)
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        try Self.check("batteryCharge", batteryChargePercent)
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        r[0] = flags.rawValue
        r[1] = watchdogRemainingMilliseconds
        r[2] = batteryCentivolts
        r[3] = batteryChargePercent
        RegisterWords.put(uptimeMilliseconds, &r, 4)
        return r
    }

    public var batteryVolts: Double { Double(batteryCentivolts) / 100 }
}

/// Safety controller commands (unit 1, holding registers 16-18).
public struct SafetyCommand: RegisterBlock {
    public static let spec = RegisterMap.safety.block("command")!

    public struct Outputs: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let beacon = Outputs(rawValue: 1 << 0)
        public static let buzzer = Outputs(rawValue: 1 << 1)
        public static let softwareEstop = Outputs(rawValue: 1 << 2)
        public static let estopReset = Outputs(rawValue: 1 << 3)
    }

    public var watchdogToken: UInt16
    public var watchdogTimeoutMilliseconds: UInt16
    public var outputs: Outputs

    public init(watchdogToken: UInt16, watchdogTimeoutMilliseconds: UInt16 = 500, outputs: Outputs = []) {
        self.watchdogToken = watchdogToken
        self.watchdogTimeoutMilliseconds = watchdogTimeoutMilliseconds
        self.outputs = outputs
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        watchdogToken = r[0]
        watchdogTimeoutMilliseconds = r[1]
        outputs = Outputs(rawValue: r[2])
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        try Self.check("watchdogTimeout", watchdogTimeoutMilliseconds)
        return [watchdogToken, watchdogTimeoutMilliseconds, outputs.rawValue]
    }

    /// Absolute address of the watchdog token register, for single-register refreshes.
    public static let watchdogTokenAddress = spec.start
    /// Absolute address of the outputs register, for single-register e-stop writes.
    public static let outputsAddress = spec.start + 2
}

/// The pack's current (unit 1, input registers 32-33, protocol 1.1, W7.9), on a safety unit
/// whose boot block's `features` has `batteryMonitor`.
public struct SafetyBattery: RegisterBlock {
    public static let spec = RegisterMap.safety.block("battery")!

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// A charger feeds the pack.
        public static let charging = Flags(rawValue: 1 << 0)
    }

    /// Averaged over the last second, 0.1 A; positive while the pack discharges.
    public var currentDeciamperes: Int16
    public var flags: Flags

    public init(currentDeciamperes: Int16, flags: Flags = []) {
        self.currentDeciamperes = currentDeciamperes
        self.flags = flags
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        currentDeciamperes = RegisterWords.i16(r, 0)
        flags = Flags(rawValue: r[1])
        try Self.check("current", currentDeciamperes)
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        try Self.check("current", currentDeciamperes)
        return [UInt16(bitPattern: currentDeciamperes), flags.rawValue]
    }

    public var currentAmperes: Double { Double(currentDeciamperes) / 10 }
}
