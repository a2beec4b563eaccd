/// The chassis range pair (unit 2, input registers 48-55, protocol 1.1, G9): two
/// distance sensors on the robot's right side, both beams square to its heading, sampled
/// together, with the odometry pose latched at that instant. A unit has the block when its
/// boot block's `features` has `rangePair`.
///
/// The pose is in the block, not read from `status`, because the two are polled at
/// different times: a wall point is a distance plus the pose it was measured from, and a
/// pose one poll late is centimetres off while the robot walks.
public struct ChassisRange: RegisterBlock {
    public static let spec = RegisterMap.chassis.block("range")!

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let frontValid = Flags(rawValue: 1 << 0)
        public static let rearValid = Flags(rawValue: 1 << 1)
        /// A sensor reports a fault of its own: both distances are invalid (G9.3).
        public static let sensorFault = Flags(rawValue: 1 << 2)
    }

    public var flags: Flags
    /// Distances along each beam, millimetres (0 when not valid).
    public var frontMillimetres: UInt16
    public var rearMillimetres: UInt16
    public var headingCentidegrees: Int16
    public var xMillimetres: Int32
    public var yMillimetres: Int32

    public init(flags: Flags, frontMillimetres: UInt16, rearMillimetres: UInt16, headingCentidegrees: Int16,
                xMillimetres: Int32, yMillimetres: Int32) {
        self.flags = flags
        self.frontMillimetres = frontMillimetres
        self.rearMillimetres = rearMillimetres
        self.headingCentidegrees = headingCentidegrees
        self.xMillimetres = xMillimetres
        self.yMillimetres = yMillimetres
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        flags = Flags(rawValue: r[0])
        frontMillimetres = r[1]
        rearMillimetres = r[2]
        headingCentidegrees = RegisterWords.i16(r, 3)
        xMillimetres = RegisterWords.i32(r, 4)
        yMillimetres = RegisterWords.i32(r, 6)
        try Self.check("front", frontMillimetres)
        try Self.check("rear", rearMillimetres)
        try Self.check("heading", headingCentidegrees)
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        try Self.check("front", frontMillimetres)
        try Self.check("rear", rearMillimetres)
        try Self.check("heading", headingCentidegrees)
        var r = [UInt16](repeating: 0, count: Self.spec.count)
        r[0] = flags.rawValue
        r[1] = frontMillimetres
        r[2] = rearMillimetres
        r[3] = UInt16(bitPattern: headingCentidegrees)
        RegisterWords.put(xMillimetres, &r, 4)
        RegisterWords.put(yMillimetres, &r, 6)
        return r
    }

    /// The front distance in metres, when the sensor has an echo and no fault.
    public var frontMetres: Double? {
        flags.contains(.frontValid) && !flags.contains(.sensorFault) ? Double(frontMillimetres) / 1000 : nil
    }

    public var rearMetres: Double? {
        flags.contains(.rearValid) && !flags.contains(.sensorFault) ? Double(rearMillimetres) / 1000 : nil
    }

    public var xMetres: Double { Double(xMillimetres) / 1000 }
    public var yMetres: Double { Double(yMillimetres) / 1000 }
    public var headingDegrees: Double { Double(headingCentidegrees) / 100 }
}
