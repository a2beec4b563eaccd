/// Gamma detector status (unit 4, input registers 16-23).
public struct DetectorStatus: RegisterBlock {
    public static let spec = RegisterMap.detector.block("status")!

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let dataValid = Flags(rawValue: 1 << 0)
        public static let overload = Flags(rawValue: 1 << 1)
        public static let fault = Flags(rawValue: 1 << 2)
        public static let highVoltageOk = Flags(rawValue: 1 << 3)
    }

    public var flags: Flags
    /// The instrument's filtered dose rate, calibration applied.
    public var doseRateNanosievertsPerHour: UInt32
    /// Pulses since boot; wraps at 2^32, so take differences with `&-`.
    public var counts: UInt32
    /// Firmware millisecond clock at which `counts` was latched; wraps at 2^32.
    public var timeBaseMilliseconds: UInt32
    public var faultCode: UInt16

    public init(flags: Flags, doseRateNanosievertsPerHour: UInt32, counts: UInt32,
                timeBaseMilliseconds: UInt32, faultCode: UInt16) {
        self.flags = flags
        self.doseRateNanosievertsPerHour = doseRateNanosievertsPerHour
        self.counts = counts
        self.timeBaseMilliseconds = timeBaseMilliseconds
        self.faultCode = faultCode
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        flags = Flags(rawValue: r[0])
        doseRateNanosievertsPerHour = RegisterWords.u32(r, 1)
        counts = RegisterWords.u32(r, 3)
        timeBaseMilliseconds = RegisterWords.u32(r, 5)
        faultCode = r[7]
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        r[0] = flags.rawValue
        RegisterWords.put(doseRateNanosievertsPerHour, &r, 1)
        RegisterWords.put(counts, &r, 3)
        RegisterWords.put(timeBaseMilliseconds, &r, 5)
        r[7] = faultCode
        return r
    }

    public var doseRateMicrosievertsPerHour: Double { Double(doseRateNanosievertsPerHour) / 1000 }

    /// Counts and elapsed time between two samples, wrap-safe.
    public func countsSince(_ earlier: DetectorStatus) -> (counts: UInt32, milliseconds: UInt32) {
        (counts &- earlier.counts, timeBaseMilliseconds &- earlier.timeBaseMilliseconds)
    }
}

/// Gamma detector instrument record (unit 4, input registers 32-49).
public struct DetectorInfo: RegisterBlock {
    public static let spec = RegisterMap.detector.block("info")!

    public var serialNumber: String
    /// Millionths: 1_000_000 is a factor of 1.0.
    public var calibrationFactorMillionths: UInt32
    /// YYYYMMDD.
    public var calibrationDate: UInt32
    /// YYYYMMDD.
    public var calibrationExpiry: UInt32
    /// Tenths of counts per second per μSv/h.
    public var sensitivityDeciCountsPerSecondPerMicrosievertPerHour: UInt16
    public var timeConstantMilliseconds: UInt16
    public var rangeMaxNanosievertsPerHour: UInt32

    public init(serialNumber: String, calibrationFactorMillionths: UInt32, calibrationDate: UInt32,
                calibrationExpiry: UInt32, sensitivityDeciCountsPerSecondPerMicrosievertPerHour: UInt16,
                timeConstantMilliseconds: UInt16, rangeMaxNanosievertsPerHour: UInt32) {
        self.serialNumber = serialNumber
        self.calibrationFactorMillionths = calibrationFactorMillionths
        self.calibrationDate = calibrationDate
        self.calibrationExpiry = calibrationExpiry
        self.sensitivityDeciCountsPerSecondPerMicrosievertPerHour = sensitivityDeciCountsPerSecondPerMicrosievertPerHour
        self.timeConstantMilliseconds = timeConstantMilliseconds
        self.rangeMaxNanosievertsPerHour = rangeMaxNanosievertsPerHour
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        serialNumber = RegisterWords.ascii(r, 0, words: 8)
        calibrationFactorMillionths = RegisterWords.u32(r, 8)
        calibrationDate = RegisterWords.u32(r, 10)
        calibrationExpiry = RegisterWords.u32(r, 12)
        sensitivityDeciCountsPerSecondPerMicrosievertPerHour = r[14]
        timeConstantMilliseconds = r[15]
        rangeMaxNanosievertsPerHour = RegisterWords.u32(r, 16)
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        guard serialNumber.utf8.count <= 16, serialNumber.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw .invalidValue(device: "detector", block: "info", field: "serialNumber",
                                reason: "must be at most 16 printable ASCII characters, got '\(serialNumber)'")
        }
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        RegisterWords.putASCII(serialNumber, &r, 0, words: 8)
        RegisterWords.put(calibrationFactorMillionths, &r, 8)
        RegisterWords.put(calibrationDate, &r, 10)
        RegisterWords.put(calibrationExpiry, &r, 12)
        r[14] = sensitivityDeciCountsPerSecondPerMicrosievertPerHour
        r[15] = timeConstantMilliseconds
        RegisterWords.put(rangeMaxNanosievertsPerHour, &r, 16)
        return r
    }

    public var calibrationFactor: Double { Double(calibrationFactorMillionths) / 1_000_000 }
    public var sensitivityCountsPerSecondPerMicrosievertPerHour: Double {
        Double(sensitivityDeciCountsPerSecondPerMicrosievertPerHour) / 10
    }
}

/// Gamma detector commands (unit 4, holding registers 16-18).
public struct DetectorCommand: RegisterBlock {
    public static let spec = RegisterMap.detector.block("command")!

    public struct Control: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let highVoltageOn = Control(rawValue: 1 << 0)
        public static let clearOverload = Control(rawValue: 1 << 1)
    }

    public var control: Control
    public var alarmLevelNanosievertsPerHour: UInt32

    public init(control: Control, alarmLevelNanosievertsPerHour: UInt32) {
        self.control = control
        self.alarmLevelNanosievertsPerHour = alarmLevelNanosievertsPerHour
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        control = Control(rawValue: r[0])
        alarmLevelNanosievertsPerHour = RegisterWords.u32(r, 1)
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        try Self.check("alarmLevel", alarmLevelNanosievertsPerHour)
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        r[0] = control.rawValue
        RegisterWords.put(alarmLevelNanosievertsPerHour, &r, 1)
        return r
    }
}
