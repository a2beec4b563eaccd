/// Chassis drive status (unit 2, input registers 16-26).
public struct ChassisStatus: RegisterBlock {
    public static let spec = RegisterMap.chassis.block("status")!

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let targetReached = Flags(rawValue: 1 << 0)
        public static let bumperFront = Flags(rawValue: 1 << 1)
        public static let bumperRear = Flags(rawValue: 1 << 2)
        public static let moving = Flags(rawValue: 1 << 3)
        public static let setpointAcknowledged = Flags(rawValue: 1 << 4)
        /// Protocol 1.1: a pose has been written since power-up (so x, y and heading are in
        /// the yard frame); it drops when the chassis restarts.
        public static let poseSet = Flags(rawValue: 1 << 5)
        /// Protocol 1.1, a chassis with `fieldScanner` (H9): something is in the warning
        /// field now.
        public static let fieldWarning = Flags(rawValue: 1 << 6)
        /// Something is in the protective field now, or the scanner is faulted (H9.4).
        public static let fieldProtective = Flags(rawValue: 1 << 7)
        /// The last set-point was ended by a protective stop (H9.2); cleared by the next
        /// accepted set-point edge (H9.3).
        public static let protectiveStop = Flags(rawValue: 1 << 8)
        /// The scanner reports a fault of its own: the chassis does not move (H9.4).
        public static let fieldScannerFault = Flags(rawValue: 1 << 9)
    }

    public var statusword: UInt16
    public var flags: Flags
    public var positionXMillimetres: Int32
    public var positionYMillimetres: Int32
    public var headingCentidegrees: Int16
    public var velocityMillimetresPerSecond: Int16
    public var odometerMillimetres: UInt32
    public var faultCode: UInt16

    public init(statusword: UInt16, flags: Flags, positionXMillimetres: Int32, positionYMillimetres: Int32,
                headingCentidegrees: Int16, velocityMillimetresPerSecond: Int16, odometerMillimetres: UInt32,
                faultCode: UInt16) {
        self.statusword = statusword
        self.flags = flags
        self.positionXMillimetres = positionXMillimetres
        self.positionYMillimetres = positionYMillimetres
        self.headingCentidegrees = headingCentidegrees
        self.velocityMillimetresPerSecond = velocityMillimetresPerSecond
        self.odometerMillimetres = odometerMillimetres
        self.faultCode = faultCode
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        statusword = r[0]
        flags = Flags(rawValue: r[1])
        positionXMillimetres = RegisterWords.i32(r, 2)
        positionYMillimetres = RegisterWords.i32(r, 4)
        headingCentidegrees = RegisterWords.i16(r, 6)
        velocityMillimetresPerSecond = RegisterWords.i16(r, 7)
        odometerMillimetres = RegisterWords.u32(r, 8)
        faultCode = r[10]
        try Self.check("heading", headingCentidegrees)
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        try Self.check("heading", headingCentidegrees)
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        r[0] = statusword
        r[1] = flags.rawValue
        RegisterWords.put(positionXMillimetres, &r, 2)
        RegisterWords.put(positionYMillimetres, &r, 4)
        r[6] = UInt16(bitPattern: headingCentidegrees)
        r[7] = UInt16(bitPattern: velocityMillimetresPerSecond)
        RegisterWords.put(odometerMillimetres, &r, 8)
        r[10] = faultCode
        return r
    }

    public var driveState: DriveState { DriveState(statusword: statusword) }
    public var positionXMetres: Double { Double(positionXMillimetres) / 1000 }
    public var positionYMetres: Double { Double(positionYMillimetres) / 1000 }
    public var headingDegrees: Double { Double(headingCentidegrees) / 100 }
}

/// What the chassis should do when the next new-set-point edge arrives.
public enum ChassisMode: UInt16, Sendable, CaseIterable {
    case idle = 0
    /// `targetA` millimetres along the current heading (negative reverses).
    case moveRelative = 1
    /// Drive straight to (`targetA`, `targetB`) in millimetres, turning first.
    case moveTo = 2
    /// Turn on the spot by `targetA` centidegrees (counter-clockwise positive).
    case turnRelative = 3
    /// Turn on the spot to heading `targetA` centidegrees.
    case turnTo = 4
}

/// Chassis drive commands (unit 2, holding registers 16-24).
public struct ChassisCommand: RegisterBlock {
    public static let spec = RegisterMap.chassis.block("command")!

    public var controlword: Controlword
    public var mode: ChassisMode
    public var targetA: Int32
    public var targetB: Int32
    public var speedMillimetresPerSecond: UInt16
    public var turnRateCentidegreesPerSecond: UInt16
    public var accelerationMillimetresPerSecond2: UInt16

    public init(controlword: Controlword, mode: ChassisMode, targetA: Int32 = 0, targetB: Int32 = 0,
                speedMillimetresPerSecond: UInt16 = 500, turnRateCentidegreesPerSecond: UInt16 = 3000,
                accelerationMillimetresPerSecond2: UInt16 = 500) {
        self.controlword = controlword
        self.mode = mode
        self.targetA = targetA
        self.targetB = targetB
        self.speedMillimetresPerSecond = speedMillimetresPerSecond
        self.turnRateCentidegreesPerSecond = turnRateCentidegreesPerSecond
        self.accelerationMillimetresPerSecond2 = accelerationMillimetresPerSecond2
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        guard let mode = ChassisMode(rawValue: r[1]) else {
            throw .valueOutOfRange(device: "chassis", block: "command", field: "mode", raw: Int64(r[1]),
                                   allowed: 0...4, unit: nil, scale: 1)
        }
        controlword = Controlword(rawValue: r[0])
        self.mode = mode
        targetA = RegisterWords.i32(r, 2)
        targetB = RegisterWords.i32(r, 4)
        speedMillimetresPerSecond = r[6]
        turnRateCentidegreesPerSecond = r[7]
        accelerationMillimetresPerSecond2 = r[8]
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        try encode(into: &r)
        return r
    }

    /// Encodes into `words` (which must already hold `spec.count` registers), checking
    /// every field as `registers()` does, without allocating: the control loop's tick
    /// builds its set-points this way.
    public func encode(into words: inout [UInt16]) throws(ProtocolError) {
        try Self.checkLength(words)
        try Self.check("targetA", targetA)
        try Self.check("targetB", targetB)
        try Self.check("speed", speedMillimetresPerSecond)
        try Self.check("turnRate", turnRateCentidegreesPerSecond)
        try Self.check("acceleration", accelerationMillimetresPerSecond2)
        words[0] = controlword.rawValue
        words[1] = mode.rawValue
        RegisterWords.put(targetA, &words, 2)
        RegisterWords.put(targetB, &words, 4)
        words[6] = speedMillimetresPerSecond
        words[7] = turnRateCentidegreesPerSecond
        words[8] = accelerationMillimetresPerSecond2
    }

    /// The map's raw ranges of the profile fields (the one place the limits live).
    public static let speedRange = spec.field("speed")!.effectiveRange
    public static let turnRateRange = spec.field("turnRate")!.effectiveRange
    public static let accelerationRange = spec.field("acceleration")!.effectiveRange

    /// Absolute address of the controlword, for single-register state changes.
    public static let controlwordAddress = spec.start
}
