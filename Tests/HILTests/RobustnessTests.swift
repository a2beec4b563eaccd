import FirmwareProtocol
import Foundation
import Glibc
import RobotIO
import RobotSimulator
import RobotTesting
import Testing

/// The simulator's server must survive any bytes on the line: random junk, truncated
/// frames, lying byte counts, and well-formed frames with any unit, function, address
/// and count; and answer correctly afterwards.
@Suite(.serialized, .enabled(if: Rig.isSimulator, "throws garbage at the simulator"), .enabled(if: TestTier.hil), .timeLimit(.minutes(10)))
struct RobustnessTests {
    @Test func theServerSurvivesThousandsOfHostileFrames() async throws {
        let simulator = try Simulator(model: FirmwareModel(), options: Simulator.Options(realTimePhysics: false))
        try simulator.start()
        defer { simulator.stop() }
        let fd = open(simulator.serialPath, O_RDWR | O_NOCTTY | O_NONBLOCK)
        try #require(fd >= 0)
        var attributes = termios()
        tcgetattr(fd, &attributes)
        cfmakeraw(&attributes)
        tcsetattr(fd, TCSANOW, &attributes)
        var random = SeededRandom(seed: 2026)
        var sink = [UInt8](repeating: 0, count: 4096)
        func byte() -> UInt8 { UInt8(truncatingIfNeeded: random.next()) }
        for i in 0..<800 {
            var frame: [UInt8]
            switch i % 4 {
            case 0:  // junk of any length
                frame = (0..<(1 + Int(random.next() % 40))).map { _ in byte() }
            case 1:  // a valid-CRC request with anything in it
                let unit = UInt8(1 + random.next() % 6)
                let function = [0x01, 0x03, 0x04, 0x06, 0x10, 0x2B, 0x7F, 0x83][Int(random.next() % 8)]
                frame = ModbusRTUFrame.sealed([unit, UInt8(function), byte(), byte(), byte(), byte()])
            case 2:  // a write-multiple whose byte count lies
                frame = ModbusRTUFrame.sealed([UInt8(1 + random.next() % 4), 0x10, 0, 16, 0, byte(), byte(), byte(), byte()])
            default: // a truncated real request
                let full = ModbusRTUFrame.readRequest(unit: 2, function: .readInputRegisters, address: 16, count: 11)
                frame = Array(full.prefix(1 + Int(random.next() % 7)))
            }
            _ = frame.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if i % 4 != 1 || i % 20 == 1 {
                // A pause longer than the server's 5 ms silence limit ends a broken frame,
                // so that the next one is read from its start, as on a real line.
                usleep(6000)
                _ = read(fd, &sink, sink.count)
            }
        }
        usleep(50_000)
        _ = read(fd, &sink, sink.count)
        close(fd)
        // How many frames arrive separately depends on scheduling: a pty has no line
        // timing, and frames the server reads in one go fail their CRC together. Of the
        // 400 frames with a valid CRC, 240 have a pause after them; 141 were read apart
        // on a 2-core machine under full load. A server that lost its framing after the
        // garbage would read a handful.
        #expect(simulator.rtu.counters.requests > 80)
        #expect(simulator.rtu.counters.discardedBytes > 0)

        // Still serving, correctly, afterwards.
        let bus = ModbusBus(configuration: BusConfiguration(endpoint: .rtu(.path(simulator.serialPath)), maxRetries: 1))
        bus.start()
        defer { bus.stop() }
        for device in RegisterMap.devices {
            _ = try await bus.identify(device)
        }
    }
}
