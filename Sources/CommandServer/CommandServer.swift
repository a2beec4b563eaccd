import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import InspectionStore
import Logging
import NIOCore
import Prometheus
import RobotAPI
import RobotControl
import ServiceLifecycle
import Synchronization

/// The officers' API inside robotd: REST + a WebSocket telemetry stream, users and
/// roles, the motion lease, `/metrics`, the OpenAPI document and the phone UI.
///
/// Handlers only post to the loop's mailbox and read its snapshot; nothing here waits on
/// the loop thread.
public final class CommandServer: Sendable {
    public typealias Context = RobotRequestContext

    public let configuration: ServerConfiguration
    public let loop: ControlLoop
    public let store: ScanStore
    public let authenticator: Authenticator
    public let lease: MotionLease
    public let registry: PrometheusCollectorRegistry
    let desk: ScanDesk
    /// Verdicts, reports and heat-map data, off the cooperative pool.
    let reportWorker = ReportWorker()
    let metrics: ServerMetrics
    let telemetry: TelemetryHub
    let logger: Logger
    let phoneUI: PhoneUIFiles
    /// Every route, as registered; the OpenAPI document is made from this.
    let routeTable = Mutex<[RouteEntry]>([])
    /// Refusals of callers without a valid token, counted per address for the audit.
    let refusals: RefusalLog
    /// Connections waiting for their first request, and those closed for being slow.
    let connections = ConnectionCounters()
    let webSockets = WebSocketCounts()
    /// One-time tickets for links and the WebSocket (no long-lived token in a URL).
    let tickets = TicketBook()
    /// The comms-loss policy for automated scans.
    let commsSupervisor: CommsSupervisor

    public init(configuration: ServerConfiguration, loop: ControlLoop, store: ScanStore, logger: Logger,
                registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.configuration = configuration
        self.loop = loop
        self.store = store
        self.logger = logger
        self.registry = registry
        refusals = RefusalLog(intervalSeconds: configuration.refusalLogIntervalSeconds)
        authenticator = Authenticator(store: store, tokenLifetimeSeconds: configuration.tokenLifetimeSeconds,
                                      maxFailures: configuration.loginMaxFailures, lockoutSeconds: configuration.loginLockoutSeconds)
        lease = MotionLease(loop: loop)
        desk = ScanDesk(store: store, loop: loop,
                        profiles: ProfileLibrary(directory: configuration.profilesDirectory, defaultName: configuration.defaultProfile),
                        robotId: configuration.robotId, timeScale: configuration.timeScale,
                        reportDirectory: configuration.reportDirectory, logger: logger, probeMount: configuration.probeMount)
        commsSupervisor = CommsSupervisor(desk: desk, lease: lease, loop: loop, store: store,
                                          graceSeconds: configuration.scanCommsLossSeconds, logger: logger)
        metrics = ServerMetrics(registry: registry)
        phoneUI = PhoneUIFiles()
        let deskRef = desk
        let loopRef = loop
        let leaseStatus = lease
        telemetry = TelemetryHub(rateHertz: configuration.telemetryRateHertz, loop: loop) {
            Self.telemetryFrame(loop: loopRef, lease: leaseStatus, desk: deskRef)
        }
    }

    /// The router with every route; exposed for the OpenAPI route check.
    public func makeRouter() -> Router<Context> {
        let router = Router(context: Context.self)
        router.add(middleware: RequestAccounting(metrics: metrics, logger: logger))
        registerRoutes(router)
        return router
    }

    /// The HTTP(S) application; `onRunning` gets the bound port.
    public func makeApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        if let problem = configuration.problems().first { throw ConfigurationRefused(description: problem) }
        if !configuration.isLoopback && !configuration.tlsEnabled {
            logger.warning("plain HTTP on \(configuration.host): passwords and tokens cross the network in clear (server.allowPlaintext is set)")
        }
        Self.raiseOpenFileLimit(logger: logger)
        let router = makeRouter()
        let address = BindAddress.hostname(configuration.host, port: configuration.port)
        let counters = connections
        let deadline = configuration.requestDeadlineSeconds
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestDeadline(seconds: deadline, counters: counters)],
            idleTimeout: .milliseconds(Int64(configuration.idleTimeoutSeconds * 1000)))
        let webSocketResponder = router.buildResponder()
        let upgrade = HTTPServerBuilder { responder in
            GuardedHTTPChannel(inner: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder,
                                                                   configuration: .init(http1: http1)),
                               headDeadlineSeconds: deadline, counters: counters)
        }
        let server: HTTPServerBuilder
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate)
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
            // TLS 1.0 and 1.1 are broken; the phones all speak 1.2 or 1.3.
            tls.minimumTLSVersion = .tlsv12
            server = try .tls(upgrade, tlsConfiguration: tls)
        } else {
            server = upgrade
        }
        let telemetry = self.telemetry
        return Application(router: router, server: server,
                           configuration: .init(address: address, serverName: "robotd",
                                                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maximumConnections)),
                           services: [TelemetryService(hub: telemetry), RefusalLogService(log: refusals, store: store),
                                      FieldEventJournal(loop: loop, store: store, desk: desk),
                                      CommsSupervisorService(supervisor: commsSupervisor,
                                                             minimumFreeDiskBytes: configuration.minimumFreeDiskBytes)],
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
                           logger: logger)
    }

    /// Shows a scan that robotd runs itself (`--scan`) in the API, telemetry and phone UI,
    /// so officers can watch, pause or abort it.
    public func adoptScan(_ session: ScanSession, by user: String) {
        desk.adopt(session, by: user)
    }

    public func scanEnded(_ session: ScanSession, ending: ScanSession.Ending) {
        desk.ended(session, ending: "\(ending)")
    }

    /// Connections closed because their request did not arrive within the deadline.
    public var slowConnectionsClosed: Int { connections.timedOut.load(ordering: .relaxed) }

    /// Why the server will not start with this configuration.
    public struct ConfigurationRefused: Error, CustomStringConvertible {
        public let description: String
    }

    /// Thousands of sockets (telemetry clients, slow clients up to the cap) must not take
    /// the last descriptors the bus and the store need: use the hard limit.
    static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = min(limit.rlim_max, 65_536)
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.notice("could not raise the open-file limit", metadata: ["limit": "\(limit.rlim_cur)"])
        }
    }

    /// Stops a running scan's task (it stays resumable) and returns the lease.
    public func shutDown() async {
        await desk.shutDown()
        loop.armDeadman(false)
    }

    // MARK: Telemetry frame

    /// Every stop cause has its wire code; a new cause must be added here to compile.
    static func wireCode(_ cause: StopCause) -> StopCauseCode {
        switch cause {
        case .hardwareEstop: return .hardwareEstop
        case .softwareEstop: return .softwareEstop
        case .lostLink: return .lostLink
        case .watchdogExpired: return .watchdogExpired
        case .watchdogWritesFailing: return .watchdogWritesFailing
        case .bumper: return .bumper
        case .liftLimitSwitch: return .liftLimitSwitch
        case .liftOutOfRange: return .liftOutOfRange
        case .detectorOverload: return .detectorOverload
        case .deadman: return .deadman
        case .driveFault: return .driveFault
        case .firmwareRestarted: return .firmwareRestarted
        }
    }

    /// The scanner's state and the fields H9.1 asks for at the robot's speed (turning on the
    /// spot at the configured rate when it moves without forward speed).
    static func people(_ s: RobotSnapshot, _ configuration: ControlConfiguration) -> TelemetryFrame.People {
        var people = TelemetryFrame.People(scanner: FieldScannerCode(rawValue: s.fieldScanner.rawValue) ?? .fault, held: s.heldByProtectiveField,
                                           protectiveStops: s.protectiveStops, slowdowns: s.fieldSlowdowns)
        guard s.fieldScanner != .absent else { return people }
        let turning = s.chassisMoving && abs(s.speedMetresPerSecond) < 0.005 ? configuration.turnRateDegreesPerSecond : 0
        let fields = configuration.people.fields(speedMetresPerSecond: s.speedMetresPerSecond, turnDegreesPerSecond: turning)
        people.protectiveField = .init(frontMetres: fields.protective.front, rearMetres: fields.protective.rear, sideMetres: fields.protective.side)
        people.warningField = .init(frontMetres: fields.warning.front, rearMetres: fields.warning.rear, sideMetres: fields.warning.side)
        return people
    }

    static func telemetryFrame(loop: ControlLoop, lease: MotionLease, desk: ScanDesk) -> TelemetryFrame {
        let s = loop.snapshot()
        // The line budget's result as measured: each unit's status age (protocol §11).
        var age: [UInt8: Double] = [:]
        for d in loop.bus.statisticsSnapshot() where d.statusAgeP99Microseconds > 0 {
            age[d.unitId] = Double(d.statusAgeP99Microseconds) / 1000
        }
        let stats = loop.statistics()
        let l = lease.status()
        func lifecycle(_ value: RobotControl.DeviceLifecycle) -> RobotAPI.DeviceLifecycle {
            RobotAPI.DeviceLifecycle(rawValue: value.rawValue) ?? .error
        }
        let scan = desk.active.map { active in
            let p = active.progress
            return TelemetryFrame.Scan(
                id: active.id, containerNumber: active.container,
                progress: TelemetryFrame.ScanProgress(
                    phase: ScanPhase(rawValue: p.phase.rawValue) ?? .failed, completedPoints: p.completedPoints,
                    totalPoints: p.totalPoints, backgroundReadings: p.backgroundReadings, paused: p.paused,
                    waitingForReset: p.waitingForReset, pausedReason: p.pausedReason, note: p.note, etaSeconds: p.etaSeconds))
        }
        return TelemetryFrame(
            tick: s.tick,
            pose: .init(xMetres: s.xMetres, yMetres: s.yMetres, headingDegrees: s.headingDegrees,
                        speedMetresPerSecond: s.speedMetresPerSecond, moving: s.chassisMoving),
            lift: .init(heightMetres: s.liftHeightMetres, homed: s.liftHomed, moving: s.liftMoving, state: s.liftState.rawValue),
            dose: .init(microsievertsPerHour: s.doseRateMicrosievertsPerHour,
                        uncertaintyMicrosievertsPerHour: s.doseRateUncertaintyMicrosievertsPerHour,
                        countRatePerSecond: s.countRatePerSecond,
                        instrumentMicrosievertsPerHour: s.instrumentDoseRateMicrosievertsPerHour, overload: s.detectorOverload),
            devices: .init(safety: .init(lifecycle: lifecycle(s.lifecycle.safety), linkUp: s.linkUp.safety, statusAgeP99Milliseconds: age[1]),
                           chassis: .init(lifecycle: lifecycle(s.lifecycle.chassis), linkUp: s.linkUp.chassis, state: s.chassisState.rawValue,
                                          statusAgeP99Milliseconds: age[2]),
                           lift: .init(lifecycle: lifecycle(s.lifecycle.lift), linkUp: s.linkUp.lift, statusAgeP99Milliseconds: age[3]),
                           detector: .init(lifecycle: lifecycle(s.lifecycle.detector), linkUp: s.linkUp.detector, statusAgeP99Milliseconds: age[4])),
            safety: .init(stopped: s.stopCause != nil, cause: s.stopCause.map(Self.wireCode),
                          message: s.stopCause?.description, estopButton: s.estopButton, motionPowerOn: s.motionPowerOn,
                          deadmanArmed: s.deadmanArmed, batteryChargePercent: s.batteryChargePercent, batteryVolts: s.batteryVolts,
                          batteryWatts: s.batteryWatts, standingWatts: s.standingWatts),
            loop: .init(ticks: stats.ticks, overruns: stats.overruns, wakeLatencyP99Microseconds: stats.wakeLatencyP99,
                        wakeLatencyMaxMicroseconds: stats.wakeLatencyMax),
            lease: .init(held: l.held, user: l.user, client: l.client, stale: l.stale),
            store: .init(diskLow: desk.disk.low, freeMegabytes: desk.disk.freeBytes == Int64.max ? nil : desk.disk.freeBytes / 1_048_576),
            people: people(s, loop.configuration),
            scan: scan)
    }
}

/// Runs the telemetry hub for as long as the application runs.
struct TelemetryService: Service {
    let hub: TelemetryHub
    func run() async throws {
        await cancelWhenGracefulShutdown { await hub.run() }
    }
}

/// Counts requests by method and status and logs refusals; turns any error that is not
/// an `APIError` into a JSON error body (unknown routes, oversized bodies), and never
/// shows an internal error's details beyond its description.
struct RequestAccounting: RouterMiddleware {
    typealias Context = CommandServer.Context
    let metrics: ServerMetrics
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let method = request.method.rawValue
        func seconds() -> Double {
            let d = ContinuousClock.now - started
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        do {
            let response = try await next(request, context)
            metrics.countRequest(method: method, status: response.status.code, seconds: seconds())
            return response
        } catch let error as APIError {
            metrics.countRequest(method: method, status: error.status.code, seconds: seconds())
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let status = error.status
            let apiError: APIError
            switch status {
            case .notFound:
                apiError = APIError(.notFound, "no_route", "no route \(request.method.rawValue) \(request.uri.path); GET /openapi.json lists them")
            case .methodNotAllowed:
                apiError = APIError(.methodNotAllowed, "method_not_allowed", "\(request.method.rawValue) is not allowed on \(request.uri.path); GET /openapi.json lists the methods")
            case .contentTooLarge:
                apiError = APIError(.contentTooLarge, "too_large", "the request body is too large")
            default:
                apiError = APIError(status, "http_\(status.code)", error.body ?? status.reasonPhrase)
            }
            metrics.countRequest(method: method, status: apiError.status.code, seconds: seconds())
            return try apiError.response(from: request, context: context)
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            metrics.countRequest(method: method, status: 500, seconds: seconds())
            return try APIError(.internalServerError, "internal", "the server could not complete the request: \(error)")
                .response(from: request, context: context)
        }
    }
}

/// Open telemetry WebSockets per user (the caps in `ServerConfiguration`).
final class WebSocketCounts: Sendable {
    private let open = Mutex<[String: Int]>([:])

    /// Counts one more for `user` if the caps allow it.
    func admit(_ user: String, total maximum: Int, perUser: Int) -> Bool {
        open.withLock { open in
            guard open.values.reduce(0, +) < maximum, open[user, default: 0] < perUser else { return false }
            open[user, default: 0] += 1
            return true
        }
    }

    /// Whether `admit` would let one more in (checked before anything else is).
    func hasRoom(_ user: String, total maximum: Int, perUser: Int) -> Bool {
        open.withLock { open in open.values.reduce(0, +) < maximum && open[user, default: 0] < perUser }
    }

    func close(_ user: String) {
        open.withLock { open in
            open[user, default: 1] -= 1
            if open[user] ?? 0 <= 0 { open[user] = nil }
        }
    }
}
