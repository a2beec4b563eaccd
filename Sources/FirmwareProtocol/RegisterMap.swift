/// The register map in Swift. `firmware-protocol/register-map.json` is the source of
/// truth; `RegisterMapConformanceTests` checks that this file matches it field by field.
public enum RegisterMap {
    /// First register of every unit's identity block (input table).
    public static let identityStart: UInt16 = 0
    /// First register of every unit's status and command blocks.
    public static let statusStart: UInt16 = 16

    static func identity(_ device: String) -> BlockSpec {
        BlockSpec(device: device, name: "identity", table: .input, start: identityStart, fields: [
            FieldSpec("protocolMajor", offset: 0, .u16),
            FieldSpec("protocolMinor", offset: 1, .u16),
            FieldSpec("deviceType", offset: 2, .u16),
            FieldSpec("firmwareVersion", offset: 3, .u16),
        ])
    }

    /// First register of every unit's boot block (input table, protocol 1.1).
    public static let bootStart: UInt16 = 4

    /// Input registers 4-6 of every unit (protocol 1.1): how often and why it started,
    /// and which optional features it has.
    static func boot(_ device: String) -> BlockSpec {
        BlockSpec(device: device, name: "boot", table: .input, start: bootStart, fields: [
            FieldSpec("bootCount", offset: 0, .u16),
            FieldSpec("resetCause", offset: 1, .u16, min: 0, max: 3, values: [0, 1, 2, 3]),
            FieldSpec("features", offset: 2, .bits16, bits: [BitSpec(0, "poseSet"), BitSpec(1, "rangePair"), BitSpec(2, "fieldScanner"),
                                                                 BitSpec(3, "batteryMonitor")]),
        ])
    }

    /// The CiA 402 controlword bits this protocol defines (the others are refused).
    static let controlwordBits = [
        BitSpec(0, "switchOn"), BitSpec(1, "enableVoltage"), BitSpec(2, "quickStop"), BitSpec(3, "enableOperation"),
        BitSpec(4, "newSetpoint"), BitSpec(7, "faultReset"), BitSpec(8, "halt"),
    ]

    public static let safety = DeviceSpec(name: "safety", unitId: 1, deviceType: 1, blocks: [
        identity("safety"),
        boot("safety"),
        BlockSpec(device: "safety", name: "status", table: .input, start: statusStart, fields: [
            FieldSpec("flags", offset: 0, .bits16, bits: [
                BitSpec(0, "estopButton"), BitSpec(1, "estopLatched"), BitSpec(2, "watchdogExpired"),
                BitSpec(3, "motionPowerOn"), BitSpec(4, "softwareEstop"), BitSpec(5, "beaconOn"),
                BitSpec(6, "buzzerOn"), BitSpec(7, "bootInterlock"),
            ]),
            FieldSpec("watchdogRemaining", offset: 1, .u16, unit: "ms"),
            FieldSpec("batteryVoltage", offset: 2, .u16, scale: 0.01, unit: "V"),
            FieldSpec("batteryCharge", offset: 3, .u16, unit: "%", min: 0, max: 100),
            FieldSpec("uptime", offset: 4, .u32, unit: "ms"),
        ]),
        BlockSpec(device: "safety", name: "battery", table: .input, start: 32, fields: [
            FieldSpec("current", offset: 0, .i16, scale: 0.1, unit: "A", min: -3000, max: 3000),
            FieldSpec("flags", offset: 1, .bits16, bits: [BitSpec(0, "charging")]),
        ]),
        BlockSpec(device: "safety", name: "command", table: .holding, start: statusStart, fields: [
            FieldSpec("watchdogToken", offset: 0, .u16, writable: true),
            FieldSpec("watchdogTimeout", offset: 1, .u16, unit: "ms", min: 50, max: 10000, writable: true),
            FieldSpec("outputs", offset: 2, .bits16, writable: true, bits: [
                BitSpec(0, "beacon"), BitSpec(1, "buzzer"), BitSpec(2, "softwareEstop"), BitSpec(3, "estopReset"),
            ]),
        ]),
    ])

    public static let chassis = DeviceSpec(name: "chassis", unitId: 2, deviceType: 2, blocks: [
        identity("chassis"),
        boot("chassis"),
        BlockSpec(device: "chassis", name: "status", table: .input, start: statusStart, fields: [
            FieldSpec("statusword", offset: 0, .bits16),
            FieldSpec("flags", offset: 1, .bits16, bits: [
                BitSpec(0, "targetReached"), BitSpec(1, "bumperFront"), BitSpec(2, "bumperRear"),
                BitSpec(3, "moving"), BitSpec(4, "setpointAcknowledged"), BitSpec(5, "poseSet"),
                BitSpec(6, "fieldWarning"), BitSpec(7, "fieldProtective"), BitSpec(8, "protectiveStop"), BitSpec(9, "fieldScannerFault"),
            ]),
            FieldSpec("positionX", offset: 2, .i32, scale: 0.001, unit: "m"),
            FieldSpec("positionY", offset: 4, .i32, scale: 0.001, unit: "m"),
            FieldSpec("heading", offset: 6, .i16, scale: 0.01, unit: "deg", min: -18000, max: 18000),
            FieldSpec("velocity", offset: 7, .i16, scale: 0.001, unit: "m/s"),
            FieldSpec("odometer", offset: 8, .u32, scale: 0.001, unit: "m"),
            FieldSpec("faultCode", offset: 10, .u16),
        ]),
        BlockSpec(device: "chassis", name: "range", table: .input, start: 48, fields: [
            FieldSpec("flags", offset: 0, .bits16, bits: [BitSpec(0, "frontValid"), BitSpec(1, "rearValid"), BitSpec(2, "sensorFault")]),
            FieldSpec("front", offset: 1, .u16, scale: 0.001, unit: "m", min: 0, max: 10000),
            FieldSpec("rear", offset: 2, .u16, scale: 0.001, unit: "m", min: 0, max: 10000),
            FieldSpec("heading", offset: 3, .i16, scale: 0.01, unit: "deg", min: -18000, max: 18000),
            FieldSpec("x", offset: 4, .i32, scale: 0.001, unit: "m"),
            FieldSpec("y", offset: 6, .i32, scale: 0.001, unit: "m"),
        ]),
        BlockSpec(device: "chassis", name: "command", table: .holding, start: statusStart, fields: [
            FieldSpec("controlword", offset: 0, .bits16, writable: true, bits: controlwordBits),
            FieldSpec("mode", offset: 1, .u16, min: 0, max: 4, writable: true, values: [0, 1, 2, 3, 4]),
            FieldSpec("targetA", offset: 2, .i32, min: -1_000_000, max: 1_000_000, writable: true),
            FieldSpec("targetB", offset: 4, .i32, scale: 0.001, unit: "m", min: -1_000_000, max: 1_000_000, writable: true),
            FieldSpec("speed", offset: 6, .u16, scale: 0.001, unit: "m/s", min: 1, max: 500, writable: true),
            FieldSpec("turnRate", offset: 7, .u16, scale: 0.01, unit: "deg/s", min: 1, max: 9000, writable: true),
            FieldSpec("acceleration", offset: 8, .u16, scale: 0.001, unit: "m/s2", min: 1, max: 500, writable: true),
        ]),
        BlockSpec(device: "chassis", name: "pose", table: .holding, start: 32, fields: [
            FieldSpec("x", offset: 0, .i32, scale: 0.001, unit: "m", min: -1_000_000, max: 1_000_000, writable: true),
            FieldSpec("y", offset: 2, .i32, scale: 0.001, unit: "m", min: -1_000_000, max: 1_000_000, writable: true),
            FieldSpec("heading", offset: 4, .i16, scale: 0.01, unit: "deg", min: -18000, max: 18000, writable: true),
        ]),
    ])

    public static let lift = DeviceSpec(name: "lift", unitId: 3, deviceType: 3, blocks: [
        identity("lift"),
        boot("lift"),
        BlockSpec(device: "lift", name: "status", table: .input, start: statusStart, fields: [
            FieldSpec("statusword", offset: 0, .bits16),
            FieldSpec("flags", offset: 1, .bits16, bits: [
                BitSpec(0, "homed"), BitSpec(1, "lowerLimit"), BitSpec(2, "upperLimit"),
                BitSpec(3, "targetReached"), BitSpec(4, "moving"), BitSpec(5, "setpointAcknowledged"),
            ]),
            FieldSpec("height", offset: 2, .u16, scale: 0.001, unit: "m"),
            FieldSpec("velocity", offset: 3, .i16, scale: 0.001, unit: "m/s"),
            FieldSpec("faultCode", offset: 4, .u16),
        ]),
        BlockSpec(device: "lift", name: "command", table: .holding, start: statusStart, fields: [
            FieldSpec("controlword", offset: 0, .bits16, writable: true, bits: controlwordBits),
            FieldSpec("mode", offset: 1, .u16, min: 0, max: 6, writable: true, values: [0, 1, 6]),
            FieldSpec("targetHeight", offset: 2, .u16, scale: 0.001, unit: "m", min: 300, max: 2800, writable: true),
            FieldSpec("speed", offset: 3, .u16, scale: 0.001, unit: "m/s", min: 1, max: 200, writable: true),
            FieldSpec("acceleration", offset: 4, .u16, scale: 0.001, unit: "m/s2", min: 1, max: 400, writable: true),
        ]),
    ])

    public static let detector = DeviceSpec(name: "detector", unitId: 4, deviceType: 4, blocks: [
        identity("detector"),
        boot("detector"),
        BlockSpec(device: "detector", name: "status", table: .input, start: statusStart, fields: [
            FieldSpec("flags", offset: 0, .bits16, bits: [
                BitSpec(0, "dataValid"), BitSpec(1, "overload"), BitSpec(2, "fault"), BitSpec(3, "highVoltageOk"),
            ]),
            FieldSpec("doseRate", offset: 1, .u32, scale: 0.001, unit: "uSv/h"),
            FieldSpec("counts", offset: 3, .u32),
            FieldSpec("timeBase", offset: 5, .u32, unit: "ms"),
            FieldSpec("faultCode", offset: 7, .u16),
        ]),
        BlockSpec(device: "detector", name: "info", table: .input, start: 32, fields: [
            FieldSpec("serialNumber", offset: 0, .ascii, words: 8),
            FieldSpec("calibrationFactor", offset: 8, .u32, scale: 0.000001),
            FieldSpec("calibrationDate", offset: 10, .u32),
            FieldSpec("calibrationExpiry", offset: 12, .u32),
            FieldSpec("sensitivity", offset: 14, .u16, scale: 0.1, unit: "cps/(uSv/h)"),
            FieldSpec("timeConstant", offset: 15, .u16, unit: "ms"),
            FieldSpec("rangeMax", offset: 16, .u32, scale: 0.001, unit: "uSv/h"),
        ]),
        BlockSpec(device: "detector", name: "command", table: .holding, start: statusStart, fields: [
            FieldSpec("control", offset: 0, .bits16, writable: true, bits: [
                BitSpec(0, "highVoltageOn"), BitSpec(1, "clearOverload"),
            ]),
            FieldSpec("alarmLevel", offset: 1, .u32, scale: 0.001, unit: "uSv/h", min: 10, max: 1_000_000_000, writable: true),
        ]),
    ])

    /// Every unit, in unit-ID order.
    public static let devices: [DeviceSpec] = [safety, chassis, lift, detector]

    public static func device(unitId: UInt8) -> DeviceSpec? {
        devices.first { $0.unitId == unitId }
    }

    public static func device(named name: String) -> DeviceSpec? {
        devices.first { $0.name == name }
    }
}
