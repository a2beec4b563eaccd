import Foundation
import StrictYAML

/// A HIL rig: what the test suite runs against. `hil/rigs/simulator.yaml` (the default)
/// starts the built-in simulator; a hardware rig file names the real robot's ports, so
/// the same suite runs on a bench with no code change.
public struct RigFile: Sendable, Equatable {
    public enum Kind: String, Sendable { case simulator, hardware }

    public var name: String
    public var kind: Kind
    /// Scenario for the simulator (relative paths are from the repository root).
    public var scenario: String?
    /// Serial port (path, `usb-serial:SERIAL` or `usb:VID:PID[:SERIAL]`), for hardware rigs.
    public var port: String?
    /// Modbus TCP gateway `HOST:PORT`, for hardware rigs, instead of `port`.
    public var tcp: String?
    public var baud: Int
    public var responseTimeoutMilliseconds: Int
    /// Simulator rigs: departures from the protocol brought back on purpose (the
    /// conformance kit must fail each).
    public var deviations: Set<Deviation> = []
    /// Hardware rigs: a stimulus controller (`HOST:PORT`, the simulator's control-socket
    /// protocol) for the conformance kit's rules that need a button pressed or a unit
    /// power-cycled.
    public var control: String?

    public static func load(path: String, displayName: String? = nil) throws(ConfigurationFileError) -> RigFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationFileError(file: displayName ?? path, line: nil, column: nil, field: "",
                                         message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, file: displayName ?? path)
    }

    public static func parse(_ text: String, file: String) throws(ConfigurationFileError) -> RigFile {
        let root = try YAMLFields.parse(text, file: file)
        try root.allowOnly(["name", "kind", "scenario", "bus", "deviant", "control"])
        var rig = RigFile(name: try root.string("name"),
                          kind: try root.choice("kind", [("simulator", .simulator), ("hardware", .hardware)]),
                          scenario: root.has("scenario") ? try root.string("scenario") : nil,
                          port: nil, tcp: nil, baud: 115_200, responseTimeoutMilliseconds: 100)
        if let bus = try root.mapping("bus") {
            try bus.allowOnly(["port", "tcp", "baud", "responseTimeoutMilliseconds"])
            rig.port = bus.has("port") ? try bus.string("port") : nil
            rig.tcp = bus.has("tcp") ? try bus.string("tcp") : nil
            rig.baud = try bus.integer("baud", default: 115_200, in: 1200...4_000_000)
            rig.responseTimeoutMilliseconds = try bus.integer("responseTimeoutMilliseconds", default: 100, in: 5...10_000)
        }
        if root.has("deviant") {
            guard rig.kind == .simulator else { throw root.error("deviant is for simulator rigs only", field: "deviant") }
            do {
                rig.deviations = try Deviation.parse(try root.words("deviant").joined(separator: ","))
            } catch let error as SimulatorArgumentError {
                throw root.error(error.message, field: "deviant")
            } catch {
                throw root.error("deviant: \(error)", field: "deviant")
            }
        }
        rig.control = root.has("control") ? try root.string("control") : nil
        if rig.kind == .hardware && (rig.port == nil) == (rig.tcp == nil) {
            throw root.error("a hardware rig names exactly one of bus.port or bus.tcp", field: "bus")
        }
        return rig
    }
}
