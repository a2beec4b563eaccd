import Foundation
import Inspection
import RobotControl

// Request and response bodies of the REST API. Field names carry their units.

struct TicketRequest: Decodable {
    let path: String
}

struct LoginRequest: Decodable {
    let name: String
    let password: String
}

struct LoginResponse: Encodable {
    let token: String
    let user: String
    let role: Role
    let expiresAt: Date
}

struct LeaseRequest: Decodable {
    /// A name for the client (a phone, a rig); shown to others when they are refused.
    let client: String?
}

/// A robot command. `type` picks the command; the other fields are its arguments.
struct CommandRequest: Decodable {
    let type: String
    let metres: Double?
    let speedMetresPerSecond: Double?
    let xMetres: Double?
    let yMetres: Double?
    let degrees: Double?
    let headingDegrees: Double?
    let heightMetres: Double?
    let seconds: Double?
    /// Wait for the command to finish (up to `waitSeconds`, default 120) before answering.
    let wait: Bool?
    let waitSeconds: Double?

    static let types = CommandType.allCases.map(\.rawValue)
}

struct ReadingBody: Encodable {
    let counts: UInt32
    let seconds: Double
    let countRatePerSecond: Double
    let countRateUncertaintyPerSecond: Double
    let doseRateMicrosievertsPerHour: Double
    let doseRateUncertaintyMicrosievertsPerHour: Double
    let instrumentDoseRateMicrosievertsPerHour: Double
    let overload: Bool

    init(_ r: Reading) {
        counts = r.counts
        seconds = r.seconds
        countRatePerSecond = r.countRatePerSecond
        countRateUncertaintyPerSecond = r.countRateUncertaintyPerSecond
        doseRateMicrosievertsPerHour = r.doseRateMicrosievertsPerHour
        doseRateUncertaintyMicrosievertsPerHour = r.doseRateUncertaintyMicrosievertsPerHour
        instrumentDoseRateMicrosievertsPerHour = r.instrumentDoseRateMicrosievertsPerHour
        overload = r.overload
    }
}

struct CommandStatus: Encodable {
    let id: UInt64
    let command: String
    let state: CommandState
    let problem: String?
    let reading: ReadingBody?

    init(_ f: CommandFeedback) {
        id = f.id
        command = "\(f.command)"
        state = f.state
        problem = f.problem?.description
        reading = f.reading.map(ReadingBody.init)
    }

    init(id: UInt64, command: RobotCommand) {
        self.id = id
        self.command = "\(command)"
        state = .accepted
        problem = nil
        reading = nil
    }
}

/// The answer to an e-stop: given only once the loop has latched it.
struct EstopStatus: Encodable {
    let id: UInt64
    let latched: Bool
    let waitedMilliseconds: Double
    /// Loop ticks from the request to the tick that latched it (the loop's own count).
    let ticksToLatch: UInt64
    let stopCause: String?
}

struct ScanCreateRequest: Decodable {
    let containerNumber: String
    /// ISO 6346 size-type code (22G1, 42G1, 45G1, L5G1) or 20ft, 40ft, 40ft-hc, 45ft-hc.
    let size: String
    let xMetres: Double?
    let yMetres: Double?
    let headingDegrees: Double?
    /// A profile name from GET /api/v1/profiles (default: the server's default profile).
    let profile: String?
}

struct ComputeRequest: Decodable {
    let scanId: String?
}

struct UserCreateRequest: Decodable {
    let name: String
    let role: String
    let password: String
}

struct UserUpdateRequest: Decodable {
    let role: String?
    let password: String?
}

struct UserBody: Encodable {
    let name: String
    let role: Role
    let createdAt: String
    let createdBy: String
}

struct CalibrationRequest: Decodable {
    let serialNumber: String
    let calibrationFactor: Double
    let calibrationDate: UInt32
    let calibrationExpiry: UInt32
    let certificate: String
}

struct PointBody: Encodable {
    let index: Int
    let face: String
    let column: Int
    let row: Int
    let alongMetres: Double
    let heightMetres: Double
    /// Mean gross dose rate of its readings so far, or nil if not measured yet.
    let grossMicrosievertsPerHour: Double?
    let readings: Int
}
