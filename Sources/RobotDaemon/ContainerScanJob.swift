import Foundation
import Inspection
import InspectionStore
import Logging
import RobotControl

/// `robotd --scan`: scan one container, or carry on with its unfinished scan in the
/// store (after a crash or a kill), then judge it and write the reports.
public struct ContainerScanJob: Sendable {
    public let placement: ContainerPlacement
    public let profile: ProcedureProfile
    public let storePath: String
    public let reportDirectory: String
    public let robotId: String
    public let officer: String
    public let timeScale: Double
    /// Where the probe sits on the robot (robotd's `probe:` configuration).
    public let probeMount: ProbeMount
    /// Measure the container's placement with the range pair before planning (`--register`).
    public var register = false

    public init(placement: ContainerPlacement, profile: ProcedureProfile, storePath: String, reportDirectory: String,
                robotId: String, officer: String, timeScale: Double, probeMount: ProbeMount = .atReferencePoint) {
        self.probeMount = probeMount
        self.placement = placement
        self.profile = profile
        self.storePath = storePath
        self.reportDirectory = reportDirectory
        self.robotId = robotId
        self.officer = officer
        self.timeScale = timeScale
    }

    /// Why command-line scan arguments were refused.
    public struct InvalidArguments: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// A job from command-line text (robotd --scan and robotctl scan): every input is
    /// checked and a refusal says what is allowed.
    public static func parse(number: String, size: String, at: String, profilePath: String, storePath: String,
                             reportDirectory: String, robotId: String, officer: String, timeScale: Double,
                             probeMount: ProbeMount = .atReferencePoint) throws(InvalidArguments) -> ContainerScanJob {
        let container: ContainerNumber
        do {
            container = try ContainerNumber(number)
        } catch {
            throw InvalidArguments(description: error.description)
        }
        guard let containerSize = ContainerSize(name: size) else {
            throw InvalidArguments(description: "--size '\(size)' is not a container size; allowed 22G1, 42G1, 45G1, L5G1 (or 20ft, 40ft, 40ft-hc, 45ft-hc)")
        }
        let parts = at.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let x = parts[0], let y = parts[1], let heading = parts[2], abs(heading) <= 180 else {
            throw InvalidArguments(description: "--at '\(at)' must be x,y,heading in metres and degrees (heading -180 to 180), e.g. 0,0,0")
        }
        let profile: ProcedureProfile
        do {
            profile = try ProcedureProfile.load(path: profilePath)
        } catch {
            throw InvalidArguments(description: error.description)
        }
        if let problem = probeMount.problems(standOffMetres: profile.standOffMetres).first {
            throw InvalidArguments(description: "the probe mount cannot be used with the profile's stand-off of \(profile.standOffMetres) m: \(problem)")
        }
        return ContainerScanJob(placement: ContainerPlacement(number: container, size: containerSize, xMetres: x, yMetres: y, headingDegrees: heading),
                                profile: profile, storePath: storePath, reportDirectory: reportDirectory, robotId: robotId,
                                officer: officer, timeScale: timeScale, probeMount: probeMount)
    }

    /// A keep-out zone around the container, for the loop: its footprint grown by 0.05 m.
    /// Only for containers square to the yard axes (the zones are axis-aligned).
    /// None when the container is registered: the zone would be the declared footprint, and
    /// the stands beside the measured one may lie inside it.
    public var keepOutZone: KeepOutZone? {
        guard !register else { return nil }
        let heading = placement.headingDegrees.truncatingRemainder(dividingBy: 90)
        guard abs(heading) < 1e-9 else { return nil }
        let corners = [(0.0, 0.0), (placement.size.lengthMetres, 0), (0, placement.size.widthMetres),
                       (placement.size.lengthMetres, placement.size.widthMetres)].map { placement.yard(along: $0.0, across: $0.1) }
        let margin = 0.05
        return KeepOutZone(minX: corners.map(\.x).min()! - margin, minY: corners.map(\.y).min()! - margin,
                           maxX: corners.map(\.x).max()! + margin, maxY: corners.map(\.y).max()! + margin)
    }

    /// A controller that died (SIGKILL, power loss) leaves the firmware's watchdog stop
    /// latched. Being told to scan (`--scan`) is the officer's go-ahead to clear that one
    /// stop, once, and only if nothing else is wrong: a pressed e-stop, a lost link or a
    /// drive fault still waits for a person. Logged and audited.
    func clearStopLeftByPreviousController(loop: ControlLoop, store: ScanStore, logger: Logger) async {
        // Give the loop a moment to read the safety unit before judging.
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline, loop.snapshot().lifecycle.safety == .unconfigured {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        try? await Task.sleep(nanoseconds: 200_000_000)
        guard let cause = loop.snapshot().stopCause, cause == .watchdogExpired else { return }
        logger.notice("clearing the firmware watchdog stop left by the previous controller", metadata: ["cause": "\(cause)"])
        let result = await loop.run(.resetFault, timeout: 5)
        try? store.audit(actor: "robotd", action: "robot.reset",
                         detail: "watchdog stop left by the previous controller, cleared for --scan: \(result?.state.rawValue ?? "no answer")")
        if result?.state != .done {
            logger.warning("the stop could not be cleared; the scan waits for an officer's reset",
                           metadata: ["problem": "\(result?.problem.map { "\($0)" } ?? "no answer")"])
        }
    }

    /// Runs the scan; `onStart` and `onEnd` let the command server show it.
    public func run(loop: ControlLoop, logger: Logger, onStart: (@Sendable (ScanSession) -> Void)? = nil,
                    onEnd: (@Sendable (ScanSession, ScanSession.Ending) -> Void)? = nil) async {
        do {
            let store = try ScanStore(path: storePath)
            await clearStopLeftByPreviousController(loop: loop, store: store, logger: logger)
            let session: ScanSession
            if let unfinished = try store.unfinishedScan(container: placement.number.text) {
                session = try ScanSession.reopen(store: store, loop: loop, scanId: unfinished, officer: officer, timeScale: timeScale)
                let done = try await store.record(for: unfinished).accepted(readingsPerPoint: session.plan.profile.readingsPerPoint).completePoints.count
                logger.notice("resuming the unfinished scan", metadata: ["scan": "\(unfinished)", "pointsWithReadings": "\(done)"])
            } else {
                var plan = ScanPlan(container: placement, profile: profile, probeMount: probeMount)
                // The battery's charge comes with the safety unit's first status.
                for _ in 0..<50 where loop.snapshot().batteryChargePercent == nil {
                    try? await Task.sleep(nanoseconds: 100_000_000)
                }
                if let refusal = BatteryBudget.refusal(toStart: plan, on: loop) {
                    logger.error("scan refused", metadata: ["container": "\(placement.number)", "reason": "\(refusal)"])
                    return
                }
                if register {
                    do {
                        let registration = try await ContainerRegistrar(loop: loop, sleeper: Sleeper(timeScale: timeScale)).register(placement)
                        plan = ScanPlan(registration: registration, profile: profile, probeMount: probeMount)
                        let m = registration.measured
                        logger.notice("container registered", metadata: [
                            "measured": "\(String(format: "%.3f, %.3f m, %.2f°", m.xMetres, m.yMetres, m.headingDegrees))",
                            "offsetFromDeclared": "\(String(format: "%.3f m, %.2f°", registration.offsetMetres, registration.headingOffsetDegrees))",
                            "length": "\(String(format: "%.3f m", registration.measuredLengthMetres))"])
                        try? store.audit(actor: officer, action: "container.register", detail: "\(placement.number.text) "
                            + String(format: "measured (%.3f, %.3f, %.2f°), %.3f m and %.2f° from the declared placement",
                                     m.xMetres, m.yMetres, m.headingDegrees, registration.offsetMetres, registration.headingOffsetDegrees))
                    } catch {
                        logger.error("scan refused", metadata: ["container": "\(placement.number)", "reason": "\(error)"])
                        try? store.audit(actor: officer, action: "container.register", detail: "\(placement.number.text) refused: \(error)")
                        return
                    }
                }
                session = try ScanSession.create(store: store, loop: loop, plan: plan, robotId: robotId, officer: officer, timeScale: timeScale)
                logger.info("scan started", metadata: ["scan": "\(session.scanId)", "container": "\(placement.number)",
                                                       "points": "\(session.plan.points.count)"])
            }
            let scanId = session.scanId
            let executor = session.executor
            let reporter = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: 5_000_000_000)
                    let p = executor.progress
                    logger.info("scan progress", metadata: ["scan": "\(scanId)", "phase": "\(p.phase.rawValue)",
                                                            "points": "\(p.completedPoints)/\(p.totalPoints)",
                                                            "eta": "\(Int(p.etaSeconds)) s",
                                                            "waitingForReset": "\(p.waitingForReset ?? "no")"])
                }
            }
            defer { reporter.cancel() }
            onStart?(session)
            let ending = await session.run()
            onEnd?(session, ending)
            guard case .done(let verdict) = ending else {
                logger.error("scan stopped", metadata: ["scan": "\(scanId)", "reason": "\(ending)"])
                return
            }
            let report = try store.report(scanId: scanId)
            let html = try store.writeReports(scanId: scanId, to: reportDirectory).htmlPath ?? ""
            var metadata: Logger.Metadata = ["scan": "\(scanId)", "verdict": "\(verdict.outcome.rawValue)",
                                             "background": "\(String(format: "%.3f", verdict.backgroundMean))",
                                             "maxNet": "\(String(format: "%.3f", verdict.maxNet))", "report": "\(html)"]
            if let s = report.source {
                metadata["source"] = "\(s.face.rawValue) face, \(String(format: "%.2f", s.alongMetres)) m from the doors, \(String(format: "%.2f", s.heightMetres)) m up"
            }
            logger.notice("scan done", metadata: metadata)
        } catch {
            logger.error("scan failed", metadata: ["reason": "\(error)"])
        }
    }
}
