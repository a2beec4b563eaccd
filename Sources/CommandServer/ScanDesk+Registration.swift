import Foundation
import Inspection
import RobotControl

/// Where a draft's container is being measured, or how it went (`POST /api/v1/scans/{id}/register`).
enum RegistrationProgress: Sendable {
    case running
    case done(ContainerRegistration)
    case failed(String)

    var json: JSONValue {
        switch self {
        case .running:
            return .object(["state": .string("running")])
        case .done(let r):
            return .object([
                "state": .string("done"),
                "declared": .object(["xMetres": .number(r.declared.xMetres), "yMetres": .number(r.declared.yMetres),
                                     "headingDegrees": .number(r.declared.headingDegrees)]),
                "measured": .object(["xMetres": .number(r.measured.xMetres), "yMetres": .number(r.measured.yMetres),
                                     "headingDegrees": .number(r.measured.headingDegrees)]),
                "offsetMetres": .number(r.offsetMetres), "headingOffsetDegrees": .number(r.headingOffsetDegrees),
                "measuredLengthMetres": .number(r.measuredLengthMetres), "pointsUsed": .number(Double(r.pointsUsed)),
                "residualMetres": .number(r.residualMetres),
            ])
        case .failed(let why):
            return .object(["state": .string("failed"), "problem": .string(why)])
        }
    }
}

extension ScanDesk {
    /// Starts measuring a draft's container with the range pair (`ContainerRegistrar`): the
    /// robot walks a pass along its left wall. When it is done the draft's plan is made
    /// again on the measured placement (the typed-in one kept as the first guess); when it
    /// fails the draft keeps its plan and says why. Refused while a scan runs, while the
    /// draft is being measured already, and on a chassis without the range pair.
    func register(_ id: String, by user: String) throws(APIError) {
        if let running = state.withLock({ $0.active }) {
            throw .conflict("scan_running", "scan \(running.session.scanId) is running; the robot cannot locate another container meanwhile")
        }
        guard loop.protocolFeatures.rangePair, loop.configuration.rangePollMilliseconds > 0 else {
            throw .conflict("no_range_pair", RegistrationFailure.noRangePair.description)
        }
        let draft: Draft? = state.withLock { s in
            guard var d = s.drafts[id] else { return nil }
            if case .running? = d.registration { return d }
            d.registration = .running
            s.drafts[id] = d
            var copy = d
            copy.registration = nil
            return copy
        }
        guard let draft else {
            throw .notFound("no planned scan '\(id)'; a container is located before its scan starts (POST /api/v1/scans plans one)")
        }
        if case .running? = draft.registration {
            throw .conflict("registration_running", "scan \(id)'s container is being located already")
        }
        // The first guess stays the typed-in placement, also when it is measured again.
        let declared = draft.plan.registration?.declared ?? draft.plan.container
        let registrar = ContainerRegistrar(loop: loop, sleeper: Sleeper(timeScale: timeScale))
        let (store, logger, probeMount) = (self.store, self.logger, draft.plan.probeMount ?? .atReferencePoint)
        let profile = draft.plan.profile
        Task { [weak self] in
            let outcome: RegistrationProgress
            var plan: ScanPlan?
            do {
                let registration = try await registrar.register(declared)
                plan = ScanPlan(registration: registration, profile: profile, probeMount: probeMount)
                outcome = .done(registration)
                let m = registration.measured
                try? store.audit(actor: user, action: "container.register", detail: "\(id) \(declared.number.text) "
                    + String(format: "measured (%.3f, %.3f, %.2f°), %.3f m and %.2f° from the declared placement",
                             m.xMetres, m.yMetres, m.headingDegrees, registration.offsetMetres, registration.headingOffsetDegrees))
            } catch {
                outcome = .failed("\(error)")
                try? store.audit(actor: user, action: "container.register", detail: "\(id) \(declared.number.text) refused: \(error)")
                logger.warning("container not registered", metadata: ["scan": "\(id)", "reason": "\(error)"])
            }
            self?.state.withLock { s in
                guard var d = s.drafts[id] else { return }
                d.registration = outcome
                if let plan { d.plan = plan }
                s.drafts[id] = d
            }
        }
    }
}
