import FirmwareProtocol
import Foundation
import RobotTesting
import Testing

/// The Swift register map must say exactly what `firmware-protocol/register-map.json` says.
@Suite(.enabled(if: TestTier.fast), .timeLimit(.minutes(5))) struct RegisterMapConformanceTests {
    let map: [String: Any]

    init() throws {
        map = try #require(try RepositoryFiles.json("firmware-protocol/register-map.json") as? [String: Any])
    }

    @Test func protocolVersionMatches() throws {
        let proto = try #require(map["protocol"] as? [String: Any])
        #expect(proto["versionMajor"] as? Int == Int(ProtocolVersion.current.major))
        #expect(proto["versionMinor"] as? Int == Int(ProtocolVersion.current.minor))
    }

    @Test func everyDeviceBlockAndFieldMatches() throws {
        let devices = try #require(map["devices"] as? [[String: Any]])
        #expect(devices.map { $0["name"] as? String } == RegisterMap.devices.map(\.name))
        for jsonDevice in devices {
            let name = try #require(jsonDevice["name"] as? String)
            let device = try #require(RegisterMap.device(named: name))
            #expect(jsonDevice["unitId"] as? Int == Int(device.unitId), "\(name) unit ID")
            #expect(jsonDevice["deviceType"] as? Int == Int(device.deviceType), "\(name) device type")
            let blocks = try #require(jsonDevice["blocks"] as? [[String: Any]])
            #expect(blocks.map { $0["name"] as? String } == device.blocks.map(\.name), "\(name) blocks")
            for jsonBlock in blocks {
                let blockName = try #require(jsonBlock["name"] as? String)
                let block = try #require(device.block(blockName))
                let where_ = "\(name).\(blockName)"
                #expect(jsonBlock["table"] as? String == block.table.rawValue, "\(where_) table")
                #expect(jsonBlock["start"] as? Int == Int(block.start), "\(where_) start")
                let fields = try #require(jsonBlock["fields"] as? [[String: Any]])
                #expect(fields.map { $0["name"] as? String } == block.fields.map(\.name), "\(where_) fields")
                for jsonField in fields {
                    let fieldName = try #require(jsonField["name"] as? String)
                    let field = try #require(block.field(fieldName))
                    let at = "\(where_).\(fieldName)"
                    #expect(jsonField["offset"] as? Int == field.offset, "\(at) offset")
                    #expect(jsonField["type"] as? String == field.type.rawValue, "\(at) type")
                    #expect((jsonField["words"] as? Int ?? field.type.defaultWordCount) == field.words, "\(at) words")
                    #expect((jsonField["scale"] as? Double ?? 1) == field.scale, "\(at) scale")
                    #expect(jsonField["unit"] as? String == field.unit, "\(at) unit")
                    #expect((jsonField["min"] as? NSNumber)?.int64Value == field.min, "\(at) min")
                    #expect((jsonField["max"] as? NSNumber)?.int64Value == field.max, "\(at) max")
                    #expect((jsonField["access"] as? String == "rw") == field.writable, "\(at) access")
                    #expect((jsonField["values"] as? [Int]).map { $0.map(Int64.init) } == field.values, "\(at) values")
                    let bits = (jsonField["bits"] as? [[String: Any]] ?? []).map {
                        BitSpec($0["bit"] as? Int ?? -1, $0["name"] as? String ?? "")
                    }
                    #expect(bits == field.bits, "\(at) bits")
                }
            }
        }
    }

    @Test func typedBlocksCoverTheirSpecs() {
        #expect(IdentityBlock.spec.count == 4)
        #expect(BootBlock.spec.count == 3)
        #expect(ChassisPose.spec.count == 5)
        #expect(SafetyStatus.spec.count == 6)
        #expect(SafetyCommand.spec.count == 3)
        #expect(ChassisStatus.spec.count == 11)
        #expect(ChassisCommand.spec.count == 9)
        #expect(LiftStatus.spec.count == 5)
        #expect(LiftCommand.spec.count == 5)
        #expect(DetectorStatus.spec.count == 8)
        #expect(DetectorInfo.spec.count == 18)
        #expect(DetectorCommand.spec.count == 3)
    }

    @Test func exceptionCodesMatch() throws {
        let exceptions = try #require(map["exceptions"] as? [[String: Any]])
        for entry in exceptions {
            let code = try #require(entry["code"] as? Int)
            #expect(ModbusException(rawValue: UInt8(code)) != nil, "exception \(code) known to Swift")
        }
    }
}
