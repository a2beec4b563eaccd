/// Lift axis status (unit 3, input registers 16-20).
public struct LiftStatus: RegisterBlock {
    public static let spec = RegisterMap.lift.block("status")!

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let homed = Flags(rawValue: 1 << 0)
        public static let lowerLimit = Flags(rawValue: 1 << 1)
        public static let upperLimit = Flags(rawValue: 1 << 2)
        public static let targetReached = Flags(rawValue: 1 << 3)
        public static let moving = Flags(rawValue: 1 << 4)
        public static let setpointAcknowledged = Flags(rawValue: 1 << 5)
    }

    public var statusword: UInt16
    public var flags: Flags
    public var heightMillimetres: UInt16
    public var velocityMillimetresPerSecond: Int16
    public var faultCode: UInt16

    public init(statusword: UInt16, flags: Flags, heightMillimetres: UInt16,
                velocityMillimetresPerSecond: Int16, faultCode: UInt16) {
        self.statusword = statusword
        self.flags = flags
        self.heightMillimetres = heightMillimetres
        self.velocityMillimetresPerSecond = velocityMillimetresPerSecond
        self.faultCode = faultCode
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        statusword = r[0]
        flags = Flags(rawValue: r[1])
        heightMillimetres = r[2]
        velocityMillimetresPerSecond = RegisterWords.i16(r, 3)
        faultCode = r[4]
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        [statusword, flags.rawValue, heightMillimetres, UInt16(bitPattern: velocityMillimetresPerSecond), faultCode]
    }

    public var driveState: DriveState { DriveState(statusword: statusword) }
    public var heightMetres: Double { Double(heightMillimetres) / 1000 }
}

/// Lift operating modes, using the CiA 402 mode numbers.
public enum LiftMode: UInt16, Sendable, CaseIterable {
    case idle = 0
    case profilePosition = 1
    case homing = 6
}

/// Lift axis commands (unit 3, holding registers 16-20).
public struct LiftCommand: RegisterBlock {
    public static let spec = RegisterMap.lift.block("command")!

    public var controlword: Controlword
    public var mode: LiftMode
    public var targetHeightMillimetres: UInt16
    public var speedMillimetresPerSecond: UInt16
    public var accelerationMillimetresPerSecond2: UInt16

    public init(controlword: Controlword, mode: LiftMode, targetHeightMillimetres: UInt16 = 1000,
                speedMillimetresPerSecond: UInt16 = 200, accelerationMillimetresPerSecond2: UInt16 = 400) {
        self.controlword = controlword
        self.mode = mode
        self.targetHeightMillimetres = targetHeightMillimetres
        self.speedMillimetresPerSecond = speedMillimetresPerSecond
        self.accelerationMillimetresPerSecond2 = accelerationMillimetresPerSecond2
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        guard let mode = LiftMode(rawValue: r[1]) else {
            throw .invalidValue(device: "lift", block: "command", field: "mode",
                                reason: "\(r[1]) is not a lift mode; allowed 0 (idle), 1 (profile position), 6 (homing)")
        }
        controlword = Controlword(rawValue: r[0])
        self.mode = mode
        targetHeightMillimetres = r[2]
        speedMillimetresPerSecond = r[3]
        accelerationMillimetresPerSecond2 = r[4]
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        try encode(into: &r)
        return r
    }

    /// Encodes into `words` (which must already hold `spec.count` registers) without
    /// allocating, checking every field as `registers()` does.
    public func encode(into words: inout [UInt16]) throws(ProtocolError) {
        try Self.checkLength(words)
        try Self.check("targetHeight", targetHeightMillimetres)
        try Self.check("speed", speedMillimetresPerSecond)
        try Self.check("acceleration", accelerationMillimetresPerSecond2)
        words[0] = controlword.rawValue
        words[1] = mode.rawValue
        words[2] = targetHeightMillimetres
        words[3] = speedMillimetresPerSecond
        words[4] = accelerationMillimetresPerSecond2
    }

    /// The map's raw ranges of the set-point fields (the one place the limits live).
    public static let targetHeightRange = spec.field("targetHeight")!.effectiveRange
    public static let speedRange = spec.field("speed")!.effectiveRange
    public static let accelerationRange = spec.field("acceleration")!.effectiveRange

    public static let controlwordAddress = spec.start
}
