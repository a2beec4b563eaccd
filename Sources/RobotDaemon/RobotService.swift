import FirmwareProtocol
import Foundation
import Logging
import RobotControl
import RobotIO
import ServiceLifecycle
import Synchronization

/// The robot as a service: starts the control loop, warns about overruns (throttled),
/// and on a graceful shutdown (SIGTERM, SIGINT) stops motion, lowers the lift to its
/// park height when that is safe, and stops the loop and the bus.
public struct RobotService: Service {
    public let loop: ControlLoop
    public let logger: Logger
    /// Runs once the loop is up (the demo), before waiting for shutdown.
    public let afterStart: (@Sendable (ControlLoop, Logger) async -> Void)?
    /// systemd's readiness and watchdog (nothing outside systemd).
    public let notifier: SystemdNotifier
    public let readiness: DaemonReadiness?
    /// The loop tick when the shutdown signal came, and the ticket of its halt.
    private let signalled = SignalRecord()

    public init(loop: ControlLoop, logger: Logger, afterStart: (@Sendable (ControlLoop, Logger) async -> Void)? = nil,
                notifier: SystemdNotifier = SystemdNotifier(environment: [:]), readiness: DaemonReadiness? = nil) {
        self.loop = loop
        self.logger = logger
        self.afterStart = afterStart
        self.notifier = notifier
        self.readiness = readiness
    }

    public func run() async throws {
        do {
            try await loop.start()
        } catch {
            logger.critical("robot did not start", metadata: ["error": "\(error)"])
            throw error
        }
        let rate = loop.configuration.loopRateHertz
        logger.info("control loop running", metadata: ["rateHertz": "\(rate)", "bus": "\(loop.bus.endpointDescription)"])
        for note in loop.realtimeNotes { logger.notice("\(note)") }
        logger.info("firmware", metadata: loop.firmwareVersions.reduce(into: [:]) { $0[$1.key] = "\($1.value)" })
        for note in loop.startupNotes {
            // A missing 1.1 feature is worth a warning: the operator should know what is lost.
            if note.hasPrefix("protocol 1.1 feature unavailable") { logger.warning("\(note)") } else { logger.notice("\(note)") }
        }
        readiness?.started(.controlLoop, detail: "\(Int(rate)) Hz")
        let watchdog = notifier.watchdogInterval.map { interval in
            Task { [loop, logger, notifier] in await Self.feedWatchdog(every: interval / 2, loop: loop, notifier: notifier, logger: logger) }
        }
        let monitor = Task { [loop, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 5_000_000_000)
                let missed = loop.takeUnreportedOverruns()
                if missed > 0 { logger.warning("control loop overran", metadata: ["ticksMissed": "\(missed)"]) }
            }
        }
        // On SIGTERM/SIGINT the axes halt at the loop's next tick (robotd lists this
        // service last, so it is the first the group shuts down), and no later motion
        // command is taken (a scan finishing its step, an
        // API command in flight) except parking the lift.
        await withGracefulShutdownHandler {
            if let afterStart {
                // A shutdown during the demo or scan cancels it; it stops where it is and a
                // scan stays resumable.
                _ = await cancelWhenGracefulShutdown { [loop, logger] in await afterStart(loop, logger) }
            }
            try? await gracefulShutdown()
        } onGracefulShutdown: { [loop, signalled] in
            let tick = loop.snapshot().tick
            signalled.set(tick: tick, ticket: loop.requestHalt(inhibitMotion: true))
        }
        monitor.cancel()
        notifier.stopping()
        await shutDownSafely()
        watchdog?.cancel()
    }

    /// Feeds systemd's watchdog at `period` while the loop ticks (`LoopHealth`); a loop
    /// that stalls is logged once and left unfed, so systemd restarts robotd.
    static func feedWatchdog(every period: Duration, loop: ControlLoop, notifier: SystemdNotifier, logger: Logger) async {
        var health = LoopHealth(rateHertz: loop.configuration.loopRateHertz)
        var stalled = false
        let clock = ContinuousClock()
        while !Task.isCancelled {
            switch health.assess(tick: loop.snapshot().tick, at: clock.now) {
            case .healthy:
                notifier.feedWatchdog()
                if stalled { logger.notice("control loop ticking again: feeding systemd's watchdog") }
                stalled = false
            case .stalled(let ticks, let expected):
                if !stalled {
                    logger.critical("control loop stalled: systemd's watchdog is no longer fed",
                                    metadata: ["ticks": "\(ticks)", "expected": "\(Int(expected))"])
                }
                stalled = true
            }
            try? await Task.sleep(for: period)
        }
    }

    /// Stop motion; park the lift if nothing says it is unsafe; then stop the loop.
    public func shutDownSafely() async {
        logger.info("shutting down: stopping motion")
        let (tickAtSignal, signalTicket) = signalled.value ?? (loop.snapshot().tick, 0)
        let ticket = max(signalTicket, loop.requestHalt(inhibitMotion: true))
        let haltDeadline = Date().addingTimeInterval(2)
        while loop.snapshot().haltRequestsServed < ticket && Date() < haltDeadline {
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        let s0 = loop.snapshot()
        if s0.haltRequestsServed >= ticket {
            // The first halt (the signal's) is the one that stopped the motion.
            let servedAt = signalTicket > 0 ? s0.haltServedAtTick : s0.tick
            logger.notice("motion halted", metadata: ["ticksAfterSignal": "\(servedAt >= tickAtSignal ? servedAt - tickAtSignal : 0)"])
        } else {
            logger.error("the control loop did not act on the halt within 2 s; the firmware watchdog will stop the robot")
        }
        let s = loop.snapshot()
        let park = loop.configuration.liftParkMetres
        if s.stopCause == nil, s.liftHomed, s.liftState == .operationEnabled || s.liftState == .switchOnDisabled,
           s.motionPowerOn, abs(s.liftHeightMetres - park) > loop.configuration.liftToleranceMetres {
            logger.info("lowering the lift to its park height", metadata: ["parkMetres": "\(park)"])
            let result = await loop.run(.lift(heightMetres: park), timeout: 30)
            if result?.state != .done {
                logger.warning("lift not parked", metadata: ["result": "\(String(describing: result?.problem))"])
            }
        } else if let cause = s.stopCause {
            logger.notice("lift left where it is: robot stopped (\(cause))")
        }
        loop.stop()
        loop.bus.stop()
        logger.info("robot stopped")
    }
}

/// Written once by the graceful-shutdown handler, read by the shutdown that follows.
final class SignalRecord: Sendable {
    private let state = Mutex<(tick: UInt64, ticket: UInt64)?>(nil)

    func set(tick: UInt64, ticket: UInt64) {
        state.withLock { if $0 == nil { $0 = (tick, ticket) } }
    }

    var value: (tick: UInt64, ticket: UInt64)? { state.withLock { $0 } }
}
