import Foundation
import RobotControl

/// Drives the registration pass (`ContainerRegistration.pass`) and fits what the range
/// pair saw: the robot walks round to the pass's start clear of the declared container,
/// turns to put the container on its right, and walks the pass slowly while the loop
/// keeps every range reading with the pose latched with it.
public struct ContainerRegistrar: Sendable {
    public let loop: ControlLoop
    public var limits: ContainerRegistration.Limits
    /// Waits in the loop's time (a virtual robot's, in tests and benchmarks).
    public let sleeper: Sleeper

    public init(loop: ControlLoop, limits: ContainerRegistration.Limits = .init(), sleeper: Sleeper = Sleeper()) {
        self.loop = loop
        self.limits = limits
        self.sleeper = sleeper
    }

    public func register(_ declared: ContainerPlacement) async throws(RegistrationFailure) -> ContainerRegistration {
        guard loop.protocolFeatures.rangePair, loop.configuration.rangePollMilliseconds > 0 else { throw .noRangePair }
        let pass = ContainerRegistration.pass(for: declared, limits: limits)
        // Where the robot stands: only once the chassis has answered (before, the snapshot
        // says 0, 0, which may lie inside the declared container and send the route through it).
        for _ in 0..<100 where loop.snapshot().lifecycle.chassis == .unconfigured {
            await sleeper.sleep(seconds: 0.02)
        }
        let here = loop.snapshot()
        guard here.lifecycle.chassis != .unconfigured else { throw .interrupted("the chassis has not answered yet") }
        // Round the declared container at the pass's distance: wherever the real one lies
        // within the guess's limits, the robot stays the clearance away from it.
        let stops = ContainerRoute.stops(from: (here.xMetres, here.yMetres), via: [], to: pass.start, container: declared,
                                         standOffMetres: pass.distanceFromWallMetres, zones: loop.configuration.keepOutZones)
        for stop in stops {
            try await run(.walkTo(x: stop.x, y: stop.y, speedMetresPerSecond: nil), "the walk to the pass's start")
        }
        try await run(.walkTo(x: pass.start.x, y: pass.start.y, speedMetresPerSecond: nil), "the walk to the pass's start")
        try await run(.turnTo(headingDegrees: pass.headingDegrees), "the turn to the pass")
        let before = loop.rangeSequence
        // Readings 2.5 cm apart: slower for a pair polled less often (a slow line), and for a
        // simulator run faster than real time, which polls it less often in robot time.
        let pollSeconds = Double(loop.configuration.rangePollMilliseconds) / 1000
        let speed = min(limits.passSpeedMetresPerSecond, limits.readingSpacingMetres / (pollSeconds * max(1, sleeper.timeScale)))
        // Wait as long as the pass can take at that speed (a slow poll makes it minutes):
        // giving up sooner would leave the robot walking while the registration says it ended.
        let passSeconds = hypot(pass.end.x - pass.start.x, pass.end.y - pass.start.y) / max(speed, 0.001)
        try await run(.walkTo(x: pass.end.x, y: pass.end.y, speedMetresPerSecond: speed), "the pass", timeout: 2 * passSeconds + 60)
        let samples = loop.rangeSamples(after: before)
        return try ContainerRegistration.fit(declared: declared, samples: samples, geometry: loop.configuration.rangePair, limits: limits)
    }

    private func run(_ command: RobotCommand, _ what: String, timeout: Double = 300) async throws(RegistrationFailure) {
        let feedback = await loop.run(command, timeout: timeout)
        // No answer in time: stop the robot rather than leave it walking unattended.
        if feedback == nil { _ = loop.submit(.stop) }
        guard let feedback, feedback.state == .done else {
            let why = feedback.map { "\($0.state.rawValue)\($0.problem.map { ": \($0)" } ?? "")" } ?? "no answer from the control loop"
            throw .interrupted("\(what) ended \(why)")
        }
    }
}
