import Foundation
import Glibc

/// A line-based control socket on loopback for test rigs and operators:
///
///     fault kind=crcError unit=2 times=3     inject a fault now (kinds as in scenario files)
///     clear                                  drop queued bus faults
///     truth                                  the robot's true pose, lift and dose rate (JSON)
///     counters                               frames, replies and faults injected so far (JSON)
///
/// Each command gets one line back, starting `ok` or `error:`.
public final class ControlServer: @unchecked Sendable {
    private let simulator: Simulator
    private var listenSocket: Int32 = -1
    public private(set) var port: Int = 0
    private let stopFlag = StopRequest()
    private let exited = DispatchSemaphore(value: 0)
    private var started = false

    public init(simulator: Simulator) {
        self.simulator = simulator
    }

    public func start(port requested: Int) throws(TCPServer.Failure) {
        let (s, actualPort) = try TCPServer.listenSocket(host: "127.0.0.1", port: requested)
        port = actualPort
        listenSocket = s
        started = true
        let thread = Thread { [self] in self.serve() }
        thread.name = "sim-control"
        thread.start()
    }

    public func stop() {
        guard started else { return }
        stopFlag.set()
        exited.wait()
        close(listenSocket)
        started = false
    }

    private func serve() {
        defer { exited.signal() }
        while !stopFlag.isSet {
            var pfd = pollfd(fd: listenSocket, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let client = accept(listenSocket, nil, nil)
            guard client >= 0 else { continue }
            var pending = Data()
            var chunk = [UInt8](repeating: 0, count: 1024)
            while !stopFlag.isSet {
                var cfd = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                guard poll(&cfd, 1, 50) >= 0 else { break }
                if cfd.revents == 0 { continue }
                let n = read(client, &chunk, chunk.count)
                if n <= 0 { break }
                pending.append(contentsOf: chunk[0..<n])
                if pending.count > 65_536 { break }
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    let reply = respond(to: line.trimmingCharacters(in: .whitespacesAndNewlines)) + "\n"
                    _ = reply.utf8CString.withUnsafeBufferPointer { write(client, $0.baseAddress, $0.count - 1) }
                }
            }
            close(client)
        }
    }

    /// The reply to one command line.
    public func respond(to line: String) -> String {
        let words = line.split(separator: " ").map(String.init)
        guard let command = words.first else { return "error: empty command; try fault, clear, truth or counters" }
        switch command {
        case "fault":
            do {
                switch try Scenario.parseFaultCommand(Array(words.dropFirst())) {
                case let .bus(fault, unit, times, requests): simulator.faults.enqueue(fault, unit: unit, times: times, requests: requests)
                case let .device(fault): simulator.model.inject(fault)
                }
                return "ok"
            } catch {
                return "error: \(error.message)" + (error.field.isEmpty ? "" : " (\(error.field))")
            }
        case "clear":
            simulator.faults.clear()
            return "ok"
        case "truth":
            let t = simulator.model.truth()
            return String(format: "ok {\"x\":%.4f,\"y\":%.4f,\"headingDegrees\":%.3f,\"speed\":%.4f,\"liftMetres\":%.4f,"
                          + "\"motionPowerOn\":%@,\"doseRateMicrosievertsPerHour\":%.5f,\"chassis\":\"%@\",\"lift\":\"%@\",\"simulatedSeconds\":%.3f}",
                          t.x, t.y, t.headingDegrees, t.speedMetresPerSecond, t.liftMetres, t.motionPowerOn ? "true" : "false",
                          t.doseRateMicrosievertsPerHour, t.chassisState.rawValue, t.liftState.rawValue, t.simulatedSeconds)
        case "counters":
            let c = simulator.rtu.counters
            let injected = simulator.faults.counts().sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            return "ok {\"requests\":\(c.requests),\"replies\":\(c.replies),\"crcErrors\":\(c.crcErrors),"
                + "\"discardedBytes\":\(c.discardedBytes),\"ignoredUnits\":\(c.ignoredUnits),\"faultsInjected\":{\(injected)}}"
        default:
            return "error: unknown command '\(command)'; allowed fault, clear, truth, counters"
        }
    }
}
