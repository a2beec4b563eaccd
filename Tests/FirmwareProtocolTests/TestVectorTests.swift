import FirmwareProtocol
import Foundation
import RobotTesting
import Testing

/// Frames in `firmware-protocol/test-vectors.json` were made by an independent encoder
/// (make-test-vectors.py). The Swift framing, CRC and typed codecs must agree with them.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct TestVectorTests {
    struct Vector {
        let name: String
        let device: String
        let block: String?
        let unitId: UInt8
        let request: [UInt8]
        let response: [UInt8]
        let registers: [UInt16]?
        let fields: [String: Any]?
        let exception: UInt8?
    }

    /// The vectors of `list` ("vectors", or 1.1's "newBlockVectors" of the boot and pose blocks).
    static func load(_ listName: String = "vectors") throws -> [Vector] {
        let root = try #require(try RepositoryFiles.json("firmware-protocol/test-vectors.json") as? [String: Any])
        let list = try #require(root[listName] as? [[String: Any]])
        return try list.map { v in
            Vector(
                name: try required(v["name"] as? String, "name"),
                device: try required(v["device"] as? String, "device"),
                block: v["block"] as? String,
                unitId: UInt8(try required(v["unitId"] as? Int, "unitId")),
                request: try required([UInt8](hexString: try required(v["request"] as? String, "request")), "request hex"),
                response: try required([UInt8](hexString: try required(v["response"] as? String, "response")), "response hex"),
                registers: (v["registers"] as? [Int]).map { $0.map { UInt16($0) } },
                fields: v["fields"] as? [String: Any],
                exception: (v["exception"] as? Int).map { UInt8($0) })
        }
    }

    @Test func crcOfTheModbusSpecificationExample() {
        // Read 10 holding registers from unit 1 at 0: the CRC is C5 CD on the wire.
        let frame = ModbusRTUFrame.readRequest(unit: 1, function: .readHoldingRegisters, address: 0, count: 10)
        #expect(frame.hexString == "01 03 00 00 00 0a c5 cd")
    }

    @Test func everyFrameHasAValidCRC() throws {
        let vectors = try Self.load()
        #expect(vectors.count >= 13)
        for v in vectors {
            #expect(ModbusRTUFrame.hasValidCRC(v.request), "\(v.name) request")
            #expect(ModbusRTUFrame.hasValidCRC(v.response), "\(v.name) response")
            var corrupted = v.response
            corrupted[3] ^= 0x01
            #expect(!ModbusRTUFrame.hasValidCRC(corrupted), "\(v.name) corrupted")
        }
    }

    @Test func swiftBuildsTheSameRequestFrames() throws {
        for v in try Self.load() where v.exception == nil {
            let device = try #require(RegisterMap.device(named: v.device))
            let block = try #require(device.block(try required(v.block, "block")))
            let registers = try #require(v.registers)
            let built: [UInt8]
            if v.request[1] == FunctionCode.writeMultipleRegisters.rawValue {
                built = ModbusRTUFrame.writeMultipleRequest(unit: v.unitId, address: block.start, values: registers)
            } else {
                built = ModbusRTUFrame.readRequest(unit: v.unitId, function: block.table == .input ? .readInputRegisters : .readHoldingRegisters,
                                                   address: block.start, count: UInt16(block.count))
            }
            #expect(built == v.request, "\(v.name)")
        }
    }

    @Test func readResponsesDecodeToTheExampleFields() throws {
        for v in try Self.load() + Self.load("newBlockVectors") where v.exception == nil && v.request[1] != FunctionCode.writeMultipleRegisters.rawValue {
            let function = try #require(FunctionCode(rawValue: v.request[1]))
            let result = try ModbusRTUFrame.parseReadResponse(v.response, unit: v.unitId, function: function)
            guard case .values(let registers) = result else {
                Issue.record("\(v.name): expected values")
                continue
            }
            #expect(registers == v.registers, "\(v.name)")
            try checkFields(v, registers: registers)
            try checkTypedRoundTrip(v, registers: registers)
        }
    }

    @Test func writeRequestsCarryTheExampleFields() throws {
        for v in try Self.load() + Self.load("newBlockVectors") where v.exception == nil && v.request[1] == FunctionCode.writeMultipleRegisters.rawValue {
            let count = Int(v.request[6]) / 2
            let registers = (0..<count).map { UInt16(v.request[7 + 2 * $0]) << 8 | UInt16(v.request[8 + 2 * $0]) }
            try checkFields(v, registers: registers)
            try checkTypedRoundTrip(v, registers: registers)
        }
    }

    @Test func exceptionResponsesParse() throws {
        for v in try Self.load() {
            guard let code = v.exception else { continue }
            let exception = try #require(ModbusException(rawValue: code))
            let built = ModbusRTUFrame.exceptionResponse(unit: v.unitId, function: v.request[1], exception: exception)
            #expect(built == v.response, "\(v.name)")
            if let function = FunctionCode(rawValue: v.request[1]), function != .writeSingleRegister {
                #expect(try ModbusRTUFrame.parseReadResponse(v.response, unit: v.unitId, function: function) == .exception(exception))
            }
        }
    }

    /// 1.1: a 0x06 write is answered with its echo (F3.8), and Swift builds the same request.
    @Test func singleRegisterWritesEchoTheRequest() throws {
        let root = try #require(try RepositoryFiles.json("firmware-protocol/test-vectors.json") as? [String: Any])
        let list = try #require(root["singleWriteVectors"] as? [[String: Any]])
        #expect(!list.isEmpty)
        for v in list {
            let name = v["name"] as? String ?? "?"
            let requestHex = try #require(v["request"] as? String)
            let responseHex = try #require(v["response"] as? String)
            let request = try #require([UInt8](hexString: requestHex))
            let response = try #require([UInt8](hexString: responseHex))
            let unit = try #require(v["unitId"] as? Int)
            let address = try #require(v["address"] as? Int)
            let value = try #require(v["value"] as? Int)
            let built = ModbusRTUFrame.writeSingleRequest(unit: UInt8(unit), address: UInt16(address), value: UInt16(value))
            #expect(built == request, "\(name)")
            #expect(response == request, "\(name): the reply is the echo")
        }
    }

    /// 1.1: frames no unit may answer (U2.1, U2.2): a bad CRC, an absent unit, a broadcast.
    @Test func silentFramesAreRecognisedAsSuch() throws {
        let root = try #require(try RepositoryFiles.json("firmware-protocol/test-vectors.json") as? [String: Any])
        let list = try #require(root["silentVectors"] as? [[String: Any]])
        #expect(list.count >= 3)
        for v in list {
            let name = v["name"] as? String ?? "?"
            let requestHex = try #require(v["request"] as? String)
            let request = try #require([UInt8](hexString: requestHex))
            #expect(v["response"] is NSNull, "\(name): no response")
            if ModbusRTUFrame.hasValidCRC(request) {
                #expect(RegisterMap.device(unitId: request[0]) == nil, "\(name): a valid frame is silent only for a unit not on the bus")
            }
        }
    }

    /// The map-driven decoder gives the example's raw values field by field.
    func checkFields(_ v: Vector, registers: [UInt16]) throws {
        let block = try required(RegisterMap.device(named: v.device)?.block(try required(v.block, "block")), "block spec")
        let decoded = try block.decodeFields(registers)
        let expected = try #require(v.fields)
        for (field, value) in decoded {
            switch expected[field.name] {
            case let number as Int: #expect(value == .integer(Int64(number)), "\(v.name) \(field.name)")
            case let text as String: #expect(value == .text(text), "\(v.name) \(field.name)")
            default: #expect(value == .integer(0), "\(v.name) \(field.name) defaults to 0")
            }
        }
    }

    /// The typed codec for the block decodes and re-encodes the same registers.
    func checkTypedRoundTrip(_ v: Vector, registers: [UInt16]) throws {
        let again: [UInt16]
        switch (v.device, v.block) {
        case (_, "identity"?): again = try IdentityBlock(registers: registers).registers()
        case ("safety", "status"?): again = try SafetyStatus(registers: registers).registers()
        case ("safety", "command"?): again = try SafetyCommand(registers: registers).registers()
        case ("chassis", "status"?): again = try ChassisStatus(registers: registers).registers()
        case ("chassis", "command"?): again = try ChassisCommand(registers: registers).registers()
        case ("lift", "status"?): again = try LiftStatus(registers: registers).registers()
        case ("lift", "command"?): again = try LiftCommand(registers: registers).registers()
        case ("detector", "status"?): again = try DetectorStatus(registers: registers).registers()
        case ("detector", "info"?): again = try DetectorInfo(registers: registers).registers()
        case ("detector", "command"?): again = try DetectorCommand(registers: registers).registers()
        case (_, "boot"?): again = try BootBlock(registers: registers).registers()
        case ("chassis", "pose"?): again = try ChassisPose(registers: registers).registers()
        default:
            Issue.record("no typed codec for \(v.name)")
            return
        }
        #expect(again == registers, "\(v.name) typed round trip")
    }
}
