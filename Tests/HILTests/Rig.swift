import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator

/// The rig the HIL suite runs against: `HIL_RIG` names a rig file, default the simulator.
enum Rig {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let path = ProcessInfo.processInfo.environment["HIL_RIG"] ?? "hil/rigs/simulator.yaml"

    /// The rig file, or why it could not be read. A broken rig file fails the rig tests
    /// loudly instead of falling back to the simulator.
    static let loaded: Result<RigFile, ConfigurationFileError> = {
        let full = path.hasPrefix("/") ? path : root.appendingPathComponent(path).path
        return Result { () throws(ConfigurationFileError) in try RigFile.load(path: full, displayName: path) }
    }()

    static func file() throws(ConfigurationFileError) -> RigFile { try loaded.get() }

    static var isSimulator: Bool { (try? loaded.get())?.kind == .simulator }

    static func scenario(_ relativePath: String) throws -> Scenario {
        try Scenario.load(path: root.appendingPathComponent(relativePath).path)
    }

    /// The endpoint of the rig's real bus (hardware rigs only).
    static func hardwareEndpoint() throws -> BusEndpoint {
        let file = try file()
        if let tcp = file.tcp {
            let parts = tcp.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { throw RigError(description: "bus.tcp '\(tcp)' is not HOST:PORT") }
            return .tcp(host: String(parts[0]), port: port, responseTimeoutMilliseconds: file.responseTimeoutMilliseconds)
        }
        return .rtu(try PortSelector(parsing: file.port ?? ""), baud: file.baud,
                    responseTimeoutMilliseconds: file.responseTimeoutMilliseconds)
    }
}

struct RigError: Error, CustomStringConvertible {
    let description: String
}

/// A simulator from a scenario and a bus to it. Physics runs only when the test calls
/// `advance`, so kinematics are exact and repeatable.
final class SimulatedRobot: @unchecked Sendable {
    let simulator: Simulator
    let bus: ModbusBus

    /// Generous timeouts and retries by default, so a loaded CI machine does not fail
    /// tests that are not about timeouts; fault tests pass their own.
    init(scenario: Scenario, realTimePhysics: Bool = false, responseTimeoutMilliseconds: Int = 500, maxRetries: Int = 2) throws {
        simulator = try Simulator(scenario: scenario, realTimePhysics: realTimePhysics)
        try simulator.start()
        bus = ModbusBus(configuration: BusConfiguration(
            endpoint: .rtu(.path(simulator.serialPath), baud: scenario.lineTiming.baud,
                           responseTimeoutMilliseconds: responseTimeoutMilliseconds),
            maxRetries: maxRetries, reconnectIntervalMilliseconds: 50))
        bus.start()
    }

    convenience init(_ scenarioFile: String = "hil/scenarios/clean-20ft.yaml", realTimePhysics: Bool = false) throws {
        try self.init(scenario: try Rig.scenario(scenarioFile), realTimePhysics: realTimePhysics)
    }

    deinit {
        bus.stop()
        simulator.stop()
    }

    var model: FirmwareModel { simulator.model }
    var truth: FirmwareModel.Truth { model.truth() }

    func advance(_ seconds: Double) { simulator.advance(seconds: seconds) }
}

/// The minimum a controller does to move the robot: refresh the watchdog, step the
/// drives to operation enabled, send set-points with a new-set-point edge. The real
/// control loop (issue 4) does this every tick; the tests do it by hand.
struct ManualDriver {
    let bus: ModbusBus
    private var token: UInt16 = 0

    init(bus: ModbusBus) {
        self.bus = bus
    }

    mutating func refreshWatchdog(timeoutMilliseconds: UInt16 = 2000, outputs: SafetyCommand.Outputs = []) async throws {
        token &+= 1
        try await bus.write(SafetyCommand(watchdogToken: token, watchdogTimeoutMilliseconds: timeoutMilliseconds, outputs: outputs),
                            unit: RegisterMap.safety.unitId, priority: .safety)
    }

    func enable(unit: UInt8) async throws {
        for _ in 0..<6 {
            let registers = try await bus.perform(unit: unit, .readInput(address: RegisterMap.statusStart, count: 1))
            let state = DriveState(statusword: registers[0])
            guard let step = Controlword.stepTowardsEnabled(from: state) else {
                if state == .operationEnabled { return }
                throw RigError(description: "unit \(unit) is in \(state); it needs a fault reset")
            }
            _ = try await bus.perform(unit: unit, .writeSingle(address: RegisterMap.statusStart, value: step.rawValue))
        }
        throw RigError(description: "unit \(unit) did not reach operation enabled")
    }

    func resetFault(unit: UInt8) async throws {
        _ = try await bus.perform(unit: unit, .writeSingle(address: RegisterMap.statusStart, value: 0))
        _ = try await bus.perform(unit: unit, .writeSingle(address: RegisterMap.statusStart, value: Controlword.faultReset.rawValue))
        _ = try await bus.perform(unit: unit, .writeSingle(address: RegisterMap.statusStart, value: 0))
    }

    func walk(millimetres: Int32, speed: UInt16 = 500, acceleration: UInt16 = 500) async throws {
        try await start(ChassisCommand(controlword: .enableOperationCommand, mode: .moveRelative, targetA: millimetres,
                                       speedMillimetresPerSecond: speed, accelerationMillimetresPerSecond2: acceleration))
    }

    func start(_ command: ChassisCommand) async throws {
        var edge = command
        edge.controlword = command.controlword.union(.newSetpoint)
        try await bus.write(edge, unit: RegisterMap.chassis.unitId)
        _ = try await bus.perform(unit: RegisterMap.chassis.unitId,
                                  .writeSingle(address: RegisterMap.statusStart, value: command.controlword.rawValue))
    }

    func lift(_ mode: LiftMode, heightMillimetres: UInt16 = 1000, speed: UInt16 = 200) async throws {
        let command = LiftCommand(controlword: Controlword.enableOperationCommand.union(.newSetpoint), mode: mode,
                                  targetHeightMillimetres: heightMillimetres, speedMillimetresPerSecond: speed)
        try await bus.write(command, unit: RegisterMap.lift.unitId)
        _ = try await bus.perform(unit: RegisterMap.lift.unitId,
                                  .writeSingle(address: RegisterMap.statusStart, value: Controlword.enableOperationCommand.rawValue))
    }

    /// Powers the drives and enables both: a refresh, then a reset edge to release the
    /// power-up interlock (protocol 1.1, W7.5).
    mutating func powerUp() async throws {
        try await refreshWatchdog()
        try await refreshWatchdog(outputs: [.estopReset])
        try await refreshWatchdog()
        try await enable(unit: RegisterMap.chassis.unitId)
        try await enable(unit: RegisterMap.lift.unitId)
    }
}
