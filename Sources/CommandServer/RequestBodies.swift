import Foundation
import Inspection
import RobotControl

/// The decoding and checks the API applies to request bodies, in one place, for the
/// fuzz harness (`Fuzz/`) and its corpus replay test. Never throws or traps: returns
/// the error code each kind of body got ("ok" when accepted).
public enum RequestBodies {
    public static func decodeAll(_ data: Data) -> [String] {
        var codes: [String] = []
        func attempt(_ body: () throws(APIError) -> Void) {
            do {
                try body()
                codes.append("ok")
            } catch {
                codes.append(error.code)
            }
        }
        attempt { () throws(APIError) in _ = try JSONCoding.decode(LoginRequest.self, from: data) }
        attempt { () throws(APIError) in _ = try JSONCoding.decode(LeaseRequest.self, from: data) }
        attempt { () throws(APIError) in
            let request = try JSONCoding.decode(CommandRequest.self, from: data)
            _ = try CommandServer.command(from: request, configuration: ControlConfiguration())
        }
        attempt { () throws(APIError) in
            let request = try JSONCoding.decode(ScanCreateRequest.self, from: data)
            do {
                _ = try ContainerNumber(request.containerNumber)
            } catch {
                throw .invalid("\(error)")
            }
            guard ContainerSize(name: request.size) != nil else { throw .invalid("size") }
        }
        attempt { () throws(APIError) in _ = try JSONCoding.decode(ComputeRequest.self, from: data) }
        attempt { () throws(APIError) in
            let request = try JSONCoding.decode(UserCreateRequest.self, from: data)
            try CommandServer.checkUserName(request.name)
            guard Role(rawValue: request.role) != nil else { throw .invalid("role") }
        }
        attempt { () throws(APIError) in _ = try JSONCoding.decode(UserUpdateRequest.self, from: data) }
        attempt { () throws(APIError) in
            let request = try JSONCoding.decode(CalibrationRequest.self, from: data)
            guard CommandServer.validDate(request.calibrationDate), CommandServer.validDate(request.calibrationExpiry) else {
                throw .invalid("dates")
            }
        }
        attempt { () throws(APIError) in _ = try JSONCoding.decode(InstrumentCheckRequest.self, from: data) }
        attempt { () throws(APIError) in
            let request = try JSONCoding.decode(CheckSourceRequest.self, from: data)
            do {
                _ = try CheckSourceReference(serialNumber: "FUZZ", sourceId: request.sourceId,
                                             referenceMicrosievertsPerHour: request.referenceMicrosievertsPerHour,
                                             referenceDate: request.referenceDate, halfLifeDays: request.halfLifeDays ?? 10_000,
                                             registeredAt: "", actor: "").validated(today: 20_261_207)
            } catch {
                throw .invalid("\(error)")
            }
        }
        return codes
    }
}
