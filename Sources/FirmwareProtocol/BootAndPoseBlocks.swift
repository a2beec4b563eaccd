/// Why a unit last started (boot block, `resetCause`).
public enum ResetCause: UInt16, Sendable, Equatable, CaseIterable {
    case powerOn = 0
    /// The unit's own microcontroller watchdog restarted it.
    case unitWatchdog = 1
    case brownOut = 2
    case other = 3
}

/// Input registers 4-6 of every unit (protocol 1.1): power-ups so far, why the last one
/// happened, and the optional features the unit has. A 1.0 unit has no such block.
public struct BootBlock: RegisterBlock {
    public static let spec = RegisterMap.boot("any")

    public struct Features: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// The chassis `pose` block (holding 32-36) is implemented.
        public static let poseSet = Features(rawValue: 1 << 0)
        /// The chassis `range` block (input 48-55): a side-facing range sensor pair (G9).
        public static let rangePair = Features(rawValue: 1 << 1)
        /// A protective-field scanner stops the chassis on its own (H9); the chassis
        /// status flags carry its state.
        public static let fieldScanner = Features(rawValue: 1 << 2)
        /// The safety unit's `battery` block (input 32-33): the pack's current (W7.9).
        public static let batteryMonitor = Features(rawValue: 1 << 3)
    }

    /// +1 at every power-up, wrapping at 65 536; a change means the unit restarted.
    public var bootCount: UInt16
    public var resetCause: ResetCause
    public var features: Features

    public init(bootCount: UInt16, resetCause: ResetCause, features: Features) {
        self.bootCount = bootCount
        self.resetCause = resetCause
        self.features = features
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        bootCount = r[0]
        guard let cause = ResetCause(rawValue: r[1]) else {
            throw .invalidValue(device: "any", block: "boot", field: "resetCause", reason: "\(r[1]) is not 0-3")
        }
        resetCause = cause
        features = Features(rawValue: r[2])
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        [bootCount, resetCause.rawValue, features.rawValue]
    }
}

/// The chassis pose set-point (unit 2, holding registers 32-36, protocol 1.1): written
/// whole, at standstill, it sets the odometry so the status reports exactly this pose.
public struct ChassisPose: RegisterBlock {
    public static let spec = RegisterMap.chassis.block("pose")!

    public var xMillimetres: Int32
    public var yMillimetres: Int32
    public var headingCentidegrees: Int16

    public init(xMillimetres: Int32, yMillimetres: Int32, headingCentidegrees: Int16) {
        self.xMillimetres = xMillimetres
        self.yMillimetres = yMillimetres
        self.headingCentidegrees = headingCentidegrees
    }

    /// The pose in metres and degrees, rounded to the register resolution; the heading is
    /// brought into -180...180 first.
    public init(xMetres: Double, yMetres: Double, headingDegrees: Double) {
        var heading = headingDegrees.truncatingRemainder(dividingBy: 360)
        if heading > 180 { heading -= 360 }
        if heading < -180 { heading += 360 }
        self.init(xMillimetres: Int32(clamping: Int64((xMetres * 1000).rounded())),
                  yMillimetres: Int32(clamping: Int64((yMetres * 1000).rounded())),
                  headingCentidegrees: Int16(clamping: Int((heading * 100).rounded())))
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        xMillimetres = RegisterWords.i32(r, 0)
        yMillimetres = RegisterWords.i32(r, 2)
        headingCentidegrees = RegisterWords.i16(r, 4)
        try Self.check("x", xMillimetres)
        try Self.check("y", yMillimetres)
        try Self.check("heading", headingCentidegrees)
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        try Self.check("x", xMillimetres)
        try Self.check("y", yMillimetres)
        try Self.check("heading", headingCentidegrees)
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        RegisterWords.put(xMillimetres, &r, 0)
        RegisterWords.put(yMillimetres, &r, 2)
        r[4] = UInt16(bitPattern: headingCentidegrees)
        return r
    }
}
