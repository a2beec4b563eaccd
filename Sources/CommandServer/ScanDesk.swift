import Foundation
import Inspection
import InspectionStore
import Logging
import RobotControl
import Synchronization

/// The scans the server knows: drafts (planned, not started), the one running, and the
/// store's records. One scan runs at a time.
public final class ScanDesk: Sendable {
    struct Draft: Sendable {
        let id: String
        var plan: ScanPlan
        let profileName: String
        let createdBy: String
        /// Measuring where the container really is (`POST …/register`), if asked.
        var registration: RegistrationProgress?
    }

    struct Active: Sendable {
        let session: ScanSession
        /// Nil for a scan run by someone else (robotd --scan) and only shown here.
        let task: Task<Void, Never>?
        let startedBy: String
    }

    struct State {
        var drafts: [String: Draft] = [:]
        var active: Active?
        var endings: [String: String] = [:]
    }

    let store: ScanStore
    let loop: ControlLoop
    let profiles: ProfileLibrary
    let robotId: String
    let timeScale: Double
    let reportDirectory: String
    let logger: Logger
    let probeMount: ProbeMount
    let state = Mutex(State())
    /// Free space where the store lives (refreshed by `CommsSupervisorService`).
    let disk = DiskWatch()

    init(store: ScanStore, loop: ControlLoop, profiles: ProfileLibrary, robotId: String, timeScale: Double, reportDirectory: String, logger: Logger,
         probeMount: ProbeMount = .atReferencePoint) {
        self.probeMount = probeMount
        self.store = store
        self.loop = loop
        self.profiles = profiles
        self.robotId = robotId
        self.timeScale = timeScale
        self.reportDirectory = reportDirectory
        self.logger = logger
    }

    /// The running scan's id and progress.
    var active: (id: String, container: String, progress: ScanExecutor.Progress)? {
        state.withLock { $0.active }.map { ($0.session.scanId, $0.session.plan.container.number.text, $0.session.executor.progress) }
    }

    func create(_ request: ScanCreateRequest, by user: String) throws(APIError) -> Draft {
        let number: ContainerNumber
        do {
            number = try ContainerNumber(request.containerNumber)
        } catch {
            throw .invalid(error.description)
        }
        guard let size = ContainerSize(name: request.size) else {
            throw .invalid("size '\(request.size)' is not a container size; allowed 22G1, 42G1, 45G1, L5G1 (or 20ft, 40ft, 40ft-hc, 45ft-hc)")
        }
        let x = request.xMetres ?? 0, y = request.yMetres ?? 0, heading = request.headingDegrees ?? 0
        guard x.isFinite, y.isFinite, abs(x) <= 1000, abs(y) <= 1000 else {
            throw .invalid("container position (\(x), \(y)) m is out of range; allowed -1000 to 1000 m on each axis")
        }
        guard heading.isFinite, abs(heading) <= 180 else {
            throw .invalid("headingDegrees \(heading) is out of range; allowed -180 to 180")
        }
        let profile = try profiles.load(request.profile)
        if let problem = probeMount.problems(standOffMetres: profile.standOffMetres).first {
            throw .invalid("the robot's probe mount cannot be used with profile '\(profile.name)' (stand-off \(profile.standOffMetres) m): \(problem)")
        }
        let plan = ScanPlan(container: ContainerPlacement(number: number, size: size, xMetres: x, yMetres: y, headingDegrees: heading),
                            profile: profile, probeMount: probeMount)
        let draft = Draft(id: UUID().uuidString.lowercased(), plan: plan, profileName: request.profile ?? profiles.defaultName, createdBy: user,
                          registration: nil)
        state.withLock { $0.drafts[draft.id] = draft }
        try? store.audit(actor: user, action: "scan.plan", detail: "\(draft.id) \(number.text) \(size.rawValue) profile=\(draft.profileName)")
        return draft
    }

    func plan(_ id: String) throws(APIError) -> ScanPlan {
        if let draft = state.withLock({ $0.drafts[id] }) { return draft.plan }
        if let active = state.withLock({ $0.active }), active.session.scanId == id { return active.session.plan }
        do {
            return try store.plan(of: id).0
        } catch {
            throw .notFound("no scan '\(id)'; GET /api/v1/scans lists them")
        }
    }

    /// Starts a draft, or resumes an unfinished scan from the store.
    func start(_ id: String, by user: String) throws(APIError) -> ScanSession {
        if let running = state.withLock({ $0.active }) {
            throw .conflict("scan_running", "scan \(running.session.scanId) (\(running.session.plan.container.number.text)) is running; "
                + "abort it or wait for it to finish")
        }
        if case .running? = state.withLock({ $0.drafts[id]?.registration }) {
            throw .conflict("registration_running", "scan \(id)'s container is being located (POST /api/v1/scans/\(id)/register); "
                + "start it when GET /api/v1/scans/\(id) shows the registration done or failed")
        }
        if let draft = state.withLock({ $0.drafts[id] }), let refusal = BatteryBudget.refusal(toStart: draft.plan, on: loop) {
            throw .conflict("battery_low", refusal)
        }
        let session: ScanSession
        do {
            if let draft = state.withLock({ $0.drafts[id] }) {
                session = try ScanSession.create(store: store, loop: loop, plan: draft.plan, robotId: robotId, officer: user,
                                                 timeScale: timeScale, id: draft.id)
            } else {
                guard (try? store.scanStatus(id)) != nil else { throw APIError.notFound("no scan '\(id)'; create one with POST /api/v1/scans") }
                session = try ScanSession.reopen(store: store, loop: loop, scanId: id, officer: user, timeScale: timeScale)
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw .conflict("cannot_start", "\(error)")
        }
        let logger = self.logger
        let task = Task { [weak self] in
            let ending = await session.run()
            var metadata: Logger.Metadata = ["scan": "\(session.scanId)", "ending": "\(ending)"]
            if case .done = ending, let dir = self?.reportDirectory {
                metadata["report"] = "\((try? session.store.writeReports(scanId: session.scanId, to: dir).htmlPath) ?? "not written")"
            }
            logger.notice("scan ended", metadata: metadata)
            self?.state.withLock {
                $0.endings[session.scanId] = "\(ending)"
                if $0.active?.session.scanId == session.scanId { $0.active = nil }
            }
        }
        state.withLock {
            $0.drafts[id] = nil
            $0.active = Active(session: session, task: task, startedBy: user)
        }
        return session
    }

    func running(_ id: String) throws(APIError) -> ScanSession {
        guard let active = state.withLock({ $0.active }), active.session.scanId == id else {
            throw .conflict("scan_not_running", "scan '\(id)' is not running; only a running scan can be paused, resumed or aborted")
        }
        return active.session
    }

    /// A scan's status for the API.
    func status(_ id: String) throws(APIError) -> [String: JSONValue] {
        if let draft = state.withLock({ $0.drafts[id] }) {
            var body: [String: JSONValue] = ["id": .string(id), "containerNumber": .string(draft.plan.container.number.text),
                                             "state": .string(ScanState.planned.rawValue),
                                             "points": .number(Double(draft.plan.points.count)), "profile": .string(draft.profileName)]
            if let registration = draft.registration { body["registration"] = registration.json }
            return body
        }
        if let active = state.withLock({ $0.active }), active.session.scanId == id {
            let p = active.session.executor.progress
            return ["id": .string(id), "containerNumber": .string(active.session.plan.container.number.text),
                    "state": .string((p.paused ? ScanState.paused : ScanState.running).rawValue), "progress": JSONValue(encoding: p) ?? .null]
        }
        guard let summary = (try? store.scanSummary(id: id)) ?? nil else {
            throw .notFound("no scan '\(id)'; GET /api/v1/scans lists them")
        }
        var body: [String: JSONValue] = ["id": .string(id), "containerNumber": .string(summary.containerNumber),
                                         "state": .string(summary.status == .running ? ScanState.interrupted.rawValue : summary.status.rawValue),
                                         "createdAt": .string(summary.createdAt)]
        if let ending = state.withLock({ $0.endings[id] }) { body["ending"] = .string(ending) }
        if let verdict = try? store.verdict(of: id) { body["outcome"] = .string(verdict.outcome.rawValue) }
        return body
    }

    /// Planned scans, then the newest `limit` stored scans created before `before` (oldest first).
    func list(limit: Int, before: String?) throws(APIError) -> [JSONValue] {
        var all: [JSONValue] = before != nil ? [] : state.withLock { s in
            s.drafts.values.map { d in
                .object(["id": .string(d.id), "containerNumber": .string(d.plan.container.number.text), "state": .string(ScanState.planned.rawValue)])
            }
        }
        let known: Bool
        let summaries: [ScanStore.ScanSummary]
        do {
            known = try before.map { try store.scanStatus($0) != nil } ?? true
            summaries = known ? try store.scans(limit: limit, before: before) : []
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the scans could not be read: \(error)")
        }
        if !known, let before {
            throw .notFound("no scan '\(before)' to list the scans before; GET /api/v1/scans lists the newest")
        }
        let activeId = state.withLock { $0.active?.session.scanId }
        for summary in summaries {
            let stateName = summary.id == activeId ? ScanState.running.rawValue
                : (summary.status == .running ? ScanState.interrupted.rawValue : summary.status.rawValue)
            all.append(.object(["id": .string(summary.id), "containerNumber": .string(summary.containerNumber),
                                "state": .string(stateName), "createdAt": .string(summary.createdAt)]))
        }
        return all
    }

    /// Every plan point with its readings so far, for the heat maps. Blocking store reads:
    /// call it on the `ReportWorker`.
    func points(_ id: String) throws(APIError) -> [PointBody] {
        let plan = try self.plan(id)
        var readings: [Int: [DoseReading]] = [:]
        if (try? store.scanStatus(id)) != nil {
            readings = (try? store.readingSets(scanId: id).points) ?? [:]
        }
        return plan.points.map { p in
            let r = readings[p.index] ?? []
            return PointBody(index: p.index, face: p.face.rawValue, column: p.column, row: p.row, alongMetres: p.positionAlongFaceMetres,
                             heightMetres: p.heightMetres,
                             grossMicrosievertsPerHour: r.isEmpty ? nil : r.map(\.grossDoseRate).reduce(0, +) / Double(r.count),
                             readings: r.count)
        }
    }

    /// A verdict on the readings so far. Blocking store reads and the statistics over every
    /// reading: call it on the `ReportWorker`.
    func compute(_ id: String?) throws(APIError) -> Verdict {
        let scanId: String
        if let id {
            scanId = id
        } else if let active = state.withLock({ $0.active }) {
            scanId = active.session.scanId
        } else if let latest = (try? store.scans(limit: 1))?.last {
            scanId = latest.id
        } else {
            throw .conflict("no_scan", "there is no scan to compute; start one first")
        }
        guard (try? store.scanStatus(scanId)) != nil else {
            throw .conflict("no_readings", "scan '\(scanId)' has no readings yet (a planned scan must be started first)")
        }
        let (plan, instrument): (ScanPlan, InstrumentRecord)
        do {
            (plan, instrument) = try store.plan(of: scanId)
        } catch {
            throw .notFound("no scan '\(scanId)'")
        }
        do {
            let readings = try store.readingSets(scanId: scanId)
            return try Judgement.evaluate(plan: plan, instrument: instrument, scanDate: ScanSession.today(),
                                          background: readings.background, points: readings.points, remeasures: readings.remeasures)
        } catch let refusal as JudgementRefusal {
            throw .conflict("cannot_compute", "cannot compute a verdict: \(refusal)")
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the readings could not be read: \(error)")
        }
    }

    /// Shows a scan run elsewhere in this process (robotd --scan) as the running one.
    func adopt(_ session: ScanSession, by user: String) {
        state.withLock { $0.active = Active(session: session, task: nil, startedBy: user) }
    }

    func ended(_ session: ScanSession, ending: String) {
        state.withLock {
            $0.endings[session.scanId] = ending
            if $0.active?.session.scanId == session.scanId { $0.active = nil }
        }
    }

    /// Stops the running scan's task (server shutdown); the scan stays resumable.
    func shutDown() async {
        guard let active = state.withLock({ $0.active }) else { return }
        active.session.executor.pause()
        active.task?.cancel()
    }
}
