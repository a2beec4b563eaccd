import FirmwareProtocol

/// What each unit's firmware offers beyond protocol 1.0, read at start-up. A 1.0 unit
/// works, but without the 1.1 features: the controller lists what it cannot use
/// (`missing`) and refuses what needs them (a configured start pose on a 1.0 chassis).
public struct ProtocolFeatures: Sendable, Equatable {
    /// Protocol version each unit reported.
    public var versions: [RobotDevice: ProtocolVersion] = [:]
    /// Each 1.1 unit's boot block as read at start (power-ups, why, features).
    public var boot: [RobotDevice: BootBlock] = [:]

    public init() {}

    /// The chassis takes a pose (holding 32-36) and reports `poseSet`.
    public var chassisPose: Bool { boot[.chassis]?.features.contains(.poseSet) ?? false }
    /// The chassis has the side-facing range pair (input 48-55, G9).
    public var rangePair: Bool { boot[.chassis]?.features.contains(.rangePair) ?? false }
    /// The chassis has a protective-field scanner that stops it for people (H9).
    public var fieldScanner: Bool { boot[.chassis]?.features.contains(.fieldScanner) ?? false }
    /// The safety unit measures the pack's current (input 32-33, W7.9).
    public var batteryMonitor: Bool { boot[.safety]?.features.contains(.batteryMonitor) ?? false }
    /// The safety unit holds its chain open from power-up until a reset (W7.5), and says so.
    public var bootInterlock: Bool { versions[.safety]?.hasBootBlock ?? false }

    /// One line per 1.1 feature that some unit lacks, naming the unit and what is lost.
    public var missing: [String] {
        var lines: [String] = []
        for device in RobotDevice.allCases {
            guard let version = versions[device], !version.hasBootBlock else { continue }
            lines.append("\(device) speaks protocol \(version): no boot block, so a restart of it is recognised only by its effects")
        }
        if let chassis = versions[.chassis], chassis.hasBootBlock, !chassisPose {
            lines.append("chassis has no pose block: its pose cannot be set, and startPose is refused")
        } else if let chassis = versions[.chassis], !chassis.hasBootBlock {
            lines.append("chassis speaks protocol \(chassis): its pose cannot be set, and startPose is refused")
        }
        if versions[.chassis] != nil && !fieldScanner {
            lines.append("chassis has no protective-field scanner: only its bumpers stop it for people, so keep the yard round it clear")
        }
        if let safety = versions[.safety], !safety.hasBootBlock {
            lines.append("safety speaks protocol \(safety): no power-up interlock, so a restart of it powers the drives at the next refresh")
        }
        return lines
    }
}

/// Where the robot stands when the controller starts (its dock), in the yard frame: the
/// controller gives it to a 1.1 chassis that does not know its pose yet.
public struct StartPose: Sendable, Equatable, Codable {
    public var xMetres: Double
    public var yMetres: Double
    public var headingDegrees: Double

    public init(xMetres: Double, yMetres: Double, headingDegrees: Double) {
        self.xMetres = xMetres
        self.yMetres = yMetres
        self.headingDegrees = headingDegrees
    }
}
