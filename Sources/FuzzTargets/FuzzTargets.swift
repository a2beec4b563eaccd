import CommandServer
import FirmwareProtocol
import Foundation
import Inspection
import RobotSimulator

/// What the fuzzers feed with arbitrary bytes: every decoder that takes input from
/// outside. Each must refuse bad input with a typed error, never trap or hang. Used by
/// the libFuzzer executables in `Fuzz/` and by `FuzzCorpusTests` (replay).
public enum FuzzTargets {
    public static let names = ["registerBlocks", "rtuFrames", "profile", "scenario", "apiBody"]

    public static func run(_ name: String, _ bytes: [UInt8]) {
        switch name {
        case "registerBlocks": registerBlocks(bytes)
        case "rtuFrames": rtuFrames(bytes)
        case "profile": profile(bytes)
        case "scenario": scenario(bytes)
        case "apiBody": apiBody(bytes)
        default: break
        }
    }

    static let blockTypes: [any RegisterBlock.Type] = [
        IdentityBlock.self, SafetyStatus.self, SafetyCommand.self, ChassisStatus.self, ChassisCommand.self,
        LiftStatus.self, LiftCommand.self, DetectorStatus.self, DetectorInfo.self, DetectorCommand.self,
    ]

    /// First byte picks a block; the rest are its registers (big-endian pairs), any length.
    /// The typed codec and the map-driven decoder must agree on accepting exact-length input.
    public static func registerBlocks(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let type = blockTypes[Int(selector) % blockTypes.count]
        var registers: [UInt16] = []
        var i = 1
        while i + 1 < bytes.count {
            registers.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]))
            i += 2
        }
        if let block = try? type.init(registers: registers) {
            // A decoded block re-encodes or refuses with a typed error.
            _ = try? block.registers()
        }
        _ = try? type.spec.decodeFields(registers)
    }

    /// A byte string as a reply to a read (unit and function from the first two bytes),
    /// and as a request prefix.
    public static func rtuFrames(_ bytes: [UInt8]) {
        guard bytes.count >= 2 else { return }
        let function: FunctionCode = bytes[1] % 2 == 0 ? .readInputRegisters : .readHoldingRegisters
        _ = try? ModbusRTUFrame.parseReadResponse(Array(bytes.dropFirst(2)), unit: bytes[0], function: function)
        _ = ModbusRTUFrame.expectedRequestLength(prefix: Array(bytes.dropFirst(2)))
        _ = ModbusRTUFrame.hasValidCRC(bytes)
    }

    public static func profile(_ bytes: [UInt8]) {
        _ = try? ProcedureProfile.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
    }

    public static func scenario(_ bytes: [UInt8]) {
        _ = try? Scenario.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
    }

    public static func apiBody(_ bytes: [UInt8]) {
        _ = RequestBodies.decodeAll(Data(bytes))
    }
}
