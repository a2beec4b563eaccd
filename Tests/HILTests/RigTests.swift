import FirmwareProtocol
import Foundation
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// Checks that run on any rig: the simulator (default) or real hardware named by the
/// rig file in `HIL_RIG`. They use only the bus, as the controller does.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct RigTests {
    /// A bus to the rig, with the simulator behind it when the rig is the simulator.
    func connect() throws -> (ModbusBus, Simulator?) {
        let rig = try Rig.file()
        var simulator: Simulator?
        let endpoint: BusEndpoint
        if rig.kind == .simulator {
            let sim = try Simulator(scenario: try Rig.scenario(rig.scenario ?? "hil/scenarios/clean-20ft.yaml"))
            try sim.start()
            simulator = sim
            endpoint = .rtu(.path(sim.serialPath), responseTimeoutMilliseconds: rig.responseTimeoutMilliseconds)
        } else {
            endpoint = try Rig.hardwareEndpoint()
        }
        let bus = ModbusBus(configuration: BusConfiguration(endpoint: endpoint, maxRetries: 1))
        bus.start()
        return (bus, simulator)
    }

    @Test func everyUnitAnswersWithACompatibleProtocol() async throws {
        let (bus, simulator) = try connect()
        defer {
            bus.stop()
            simulator?.stop()
        }
        for device in RegisterMap.devices {
            let identity = try await bus.identify(device)
            #expect(identity.protocolVersion.major == ProtocolVersion.current.major)
        }
    }

    @Test func statusBlocksDecodeAndTheDetectorCounts() async throws {
        let (bus, simulator) = try connect()
        defer {
            bus.stop()
            simulator?.stop()
        }
        _ = try await bus.read(SafetyStatus.self, unit: 1)
        _ = try await bus.read(ChassisStatus.self, unit: 2)
        _ = try await bus.read(LiftStatus.self, unit: 3)
        let info = try await bus.read(DetectorInfo.self, unit: 4)
        #expect(!info.serialNumber.isEmpty)
        #expect(info.calibrationFactor > 0)
        let first = try await bus.read(DetectorStatus.self, unit: 4)
        try await Task.sleep(nanoseconds: 1_200_000_000)
        let second = try await bus.read(DetectorStatus.self, unit: 4)
        let (counts, milliseconds) = second.countsSince(first)
        #expect(milliseconds >= 1000, "the time base advances")
        #expect(counts > 0, "background gives counts")
    }
}
