import Foundation

/// A running simulated robot: the firmware model, its physics clock, and the links
/// (an RTU pty and, optionally, a TCP port) the controller talks to.
public final class Simulator: @unchecked Sendable {
    public let model: FirmwareModel
    public let faults: FaultInjector
    public let pty: PseudoTerminal
    public let rtu: RTUServer
    public private(set) var tcp: TCPServer?
    public let timeScale: Double
    private let stopFlag = StopRequest()
    private let physicsExited = DispatchSemaphore(value: 0)
    private var running = false

    public struct Options: Sendable {
        public var linkPath: String?
        public var lineTiming: LineTiming
        public var tcpPort: Int?
        /// Simulated seconds per wall-clock second.
        public var timeScale: Double
        /// Run physics from a wall-clock thread. Off for tests that step the model themselves.
        public var realTimePhysics: Bool
        /// Faults to inject when simulated time reaches them.
        public var timedFaults: [Scenario.TimedFault]

        public init(linkPath: String? = nil, lineTiming: LineTiming = LineTiming(), tcpPort: Int? = nil,
                    timeScale: Double = 1, realTimePhysics: Bool = true, timedFaults: [Scenario.TimedFault] = []) {
            self.linkPath = linkPath
            self.lineTiming = lineTiming
            self.tcpPort = tcpPort
            self.timeScale = timeScale
            self.realTimePhysics = realTimePhysics
            self.timedFaults = timedFaults
        }
    }

    /// A simulator for a scenario file's yard, robot, link and faults.
    public convenience init(scenario: Scenario, linkPath: String? = nil, tcpPort: Int? = nil,
                            realTimePhysics: Bool = true) throws {
        try self.init(model: scenario.makeModel(), faults: scenario.makeFaultInjector(), options: Options(
            linkPath: linkPath, lineTiming: scenario.lineTiming, tcpPort: tcpPort, timeScale: scenario.timeScale,
            realTimePhysics: realTimePhysics, timedFaults: scenario.faults))
    }

    private let options: Options
    private var nextTimedFault = 0

    public init(model: FirmwareModel, faults: FaultInjector = FaultInjector(), options: Options = Options()) throws {
        self.model = model
        self.faults = faults
        self.options = options
        self.timeScale = options.timeScale
        pty = try PseudoTerminal(linkPath: options.linkPath)
        rtu = RTUServer(fd: pty.masterFD, model: model, faults: faults, timing: options.lineTiming)
    }

    /// The serial path the controller should open.
    public var serialPath: String { pty.path }

    public func start() throws {
        guard !running else { return }
        running = true
        rtu.start()
        if let port = options.tcpPort {
            let server = TCPServer(model: model, faults: faults, port: port)
            try server.start()
            tcp = server
        }
        if options.realTimePhysics {
            let thread = Thread { [self] in self.runPhysics() }
            thread.name = "sim-physics"
            thread.start()
        } else {
            physicsExited.signal()
        }
    }

    public func stop() {
        guard running else { return }
        stopFlag.set()
        physicsExited.wait()
        rtu.stop()
        tcp?.stop()
        running = false
    }

    deinit {
        stop()
    }

    /// Advances simulated time by hand (when `realTimePhysics` is off), applying timed faults.
    public func advance(seconds: Double) {
        let steps = Int((seconds / FirmwareModel.stepSeconds).rounded())
        for _ in 0..<steps {
            model.step()
            applyDueFaults()
        }
    }

    /// Injects every scenario fault whose time has come. Runs on the physics thread only.
    private func applyDueFaults() {
        let faults = options.timedFaults
        guard nextTimedFault < faults.count else { return }
        let now = model.simulatedSeconds
        while nextTimedFault < faults.count && faults[nextTimedFault].atSeconds <= now {
            switch faults[nextTimedFault].kind {
            case let .bus(fault, unit, times, requests): self.faults.enqueue(fault, unit: unit, times: times, requests: requests)
            case let .device(fault): model.inject(fault)
            }
            nextTimedFault += 1
        }
    }

    /// Steps the model in fixed increments to keep simulated time at `timeScale` × wall time.
    private func runPhysics() {
        defer { physicsExited.signal() }
        let start = DispatchTime.now().uptimeNanoseconds
        var steps: UInt64 = 0
        while !stopFlag.isSet {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 * timeScale
            let due = UInt64(elapsed / FirmwareModel.stepSeconds)
            // Catch up at most a second of simulated time at once, so a stall cannot spin.
            var budget = Int(1 / FirmwareModel.stepSeconds)
            while steps < due && budget > 0 {
                model.step()
                applyDueFaults()
                steps += 1
                budget -= 1
            }
            if steps < due { steps = due }
            usleep(2000)
        }
    }
}
