/// Input registers 0-3 of every unit: protocol version, device type and firmware version.
public struct IdentityBlock: RegisterBlock {
    public static let spec = RegisterMap.identity("any")

    public var protocolVersion: ProtocolVersion
    public var deviceType: UInt16
    /// Major in the high byte, minor in the low byte.
    public var firmwareVersion: UInt16

    public init(protocolVersion: ProtocolVersion, deviceType: UInt16, firmwareVersion: UInt16) {
        self.protocolVersion = protocolVersion
        self.deviceType = deviceType
        self.firmwareVersion = firmwareVersion
    }

    public init(registers r: [UInt16]) throws(ProtocolError) {
        try Self.checkLength(r)
        protocolVersion = ProtocolVersion(major: r[0], minor: r[1])
        deviceType = r[2]
        firmwareVersion = r[3]
    }

    public func registers() throws(ProtocolError) -> [UInt16] {
        [protocolVersion.major, protocolVersion.minor, deviceType, firmwareVersion]
    }

    public var firmwareVersionText: String { "\(firmwareVersion >> 8).\(firmwareVersion & 0xFF)" }

    /// Throws unless the unit is the expected device and speaks a compatible protocol.
    public func check(against device: DeviceSpec, required: ProtocolVersion = .current) throws(ProtocolError) {
        guard deviceType == device.deviceType else {
            throw .wrongDeviceType(unitId: device.unitId, expected: device.deviceType, found: deviceType)
        }
        guard protocolVersion.isCompatible(with: required) else {
            throw .versionMismatch(device: device.name, found: protocolVersion, required: required)
        }
    }
}
