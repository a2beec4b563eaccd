import BenchmarkSupport
import FirmwareProtocol
import Foundation
import Inspection
import InspectionStore
import ProcessMemory
import RobotControl
import RobotIO
import RobotSimulator
import RobotTesting

/// Fault soak: repeated demo scans on the simulator while it injects faults at random.
///
///     swift build -c release --product FaultSoak
///     .build/release/FaultSoak [--minutes 30] [--seed 1] [--time-scale 10]
///
/// Bus faults on every request: 2 % CRC errors, 0.3 % missing, 0.3 % late (150 ms) and
/// 0.3 % junk replies. Every 8–20 s (wall) one more: a link drop of 1–10 s, a chassis or
/// lift drive fault, a firmware reboot, a detector overload, an officer's e-stop, or the
/// officer's phone going silent for 1.5–4 s (its keep-alives stop: a stale lease).
/// An officer task resets each safety stop after a short while, as on the quay, and only
/// while the phone is live and holds the lease (after a deadman stop it takes it anew).
/// The phone sends keep-alives at 4 Hz with the loop's deadman armed, as a motion lease does.
/// A monitor samples the simulator's true state at 200 Hz for unsafe events: drive power
/// still on 1 s after an immediate stop latched, motion 2 s after any stop latched, motion
/// 1.5 s past the deadman timeout after the last keep-alive (a stale lease), the lift
/// beyond its end stops, the chassis inside the container; and, at the end, a person of the
/// yard traffic touched while the chassis moved. After every scan the
/// store is checked: each point's readings present exactly once, the background
/// complete, the hash chains intact. Exits 1 on any unsafe event or lost/duplicated reading.
@main
struct FaultSoak {
    static func main() async {
        do {
            try await run()
        } catch {
            say("FaultSoak: \(error)")
            say("(run it from the repository root, or give the root with --root)")
            exit(2)
        }
    }

    static func run() async throws {
        let arguments = BenchmarkArguments()
        let minutes = arguments.double("--minutes", 30)
        let seed = arguments.seed()
        let timeScale = arguments.double("--time-scale", 10)
        let root = URL(fileURLWithPath: arguments.string("--root", FileManager.default.currentDirectoryPath))
        say("FaultSoak: \(minutes) min of demo scans, simulator at \(timeScale)x, seed \(seed); \(ProcessInfo.processInfo.processorCount) CPUs")

        var scenario = try Scenario.load(path: root.appendingPathComponent("hil/scenarios/clean-20ft.yaml").path)
        scenario.timeScale = timeScale
        scenario.startLiftMetres = 0.4
        // Yard traffic (protocol 1.1 H9): someone walks up to the left face every 20 s of
        // robot time, someone else crosses before the doors every 30 s. A person touched
        // while the chassis moves is an unsafe event.
        scenario.people = [WalkingPerson(fromX: 3, fromY: 4, toX: 3, toY: 0.5, speedMetresPerSecond: 1.2, startSeconds: 0, everySeconds: 20),
                           WalkingPerson(fromX: -2.5, fromY: 4, toX: -2.5, toY: -6, speedMetresPerSecond: 1.0, startSeconds: 5, everySeconds: 30)]
        var rates = FaultInjector.Rates()
        rates.crcError = 0.02
        rates.noReply = 0.003
        rates.lateReply = 0.003
        rates.junkBytes = 0.003
        var control = ControlConfiguration()
        // At 10× a 20 ms chassis poll is 200 ms of the robot's time, ten times what a robot
        // sees: a pose re-given after a reboot mid-walk was up to 10 cm stale, and the robot
        // pressed its bumper. Polled at 10 ms (100 ms robot time), and carried forward by the
        // loop to the middle of the interval, it is at most 2.5 cm off at 0.5 m/s.
        control.chassisPollMilliseconds = 10
        let footprint = KeepOutZone(minX: -0.05, minY: -2.488, maxX: 6.108, maxY: 0.05)
        control.keepOutZones = [footprint]
        let deadmanSeconds = control.deadmanTimeoutSeconds
        // PtyRobot stretches the firmware watchdog by the time scale (its time runs faster).
        let robot = try await PtyRobot(scenario: scenario, configuration: control, responseTimeoutMilliseconds: 50,
                                       reconnectIntervalMilliseconds: 100)
        let (simulator, loop) = (robot.simulator, robot.loop)
        simulator.faults.setRates(rates)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("soak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try ScanStore(path: directory.appendingPathComponent("scans.sqlite").path)
        let profile = try ProcedureProfile.load(path: root.appendingPathComponent("profiles/demo.yaml").path)
        let placement = ContainerPlacement(number: try ContainerNumber("CSQU3054383"), size: .twentyFoot, xMetres: 0, yMetres: 0)
        let tally = Tally()
        let deadline = Date().addingTimeInterval(minutes * 60)

        // The officer's phone: keep-alives at 4 Hz with the deadman armed (a motion lease);
        // after a deadman stop it takes the lease again, which re-arms it.
        loop.armDeadman(true)
        tally.keptAlive()
        let phone = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 250_000_000)
                if tally.phoneSilent { continue }
                if loop.snapshot().deadmanArmed { loop.keepAlive() } else { loop.armDeadman(true) }
                tally.keptAlive()
            }
        }
        // The officer: resets safety stops once their cause is gone, holding a live lease.
        let officer = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 50_000_000)
                guard let cause = loop.snapshot().stopCause else { continue }
                tally.count(stop: cause.code)
                try? await Task.sleep(nanoseconds: UInt64.random(in: 300_000_000...1_000_000_000))
                while loop.snapshot().stopCause != nil && !Task.isCancelled {
                    // A reset needs a live lease: the phone must be sending again and, after a
                    // deadman stop, have taken the lease anew (re-armed the deadman).
                    if tally.phoneSilent || !loop.snapshot().deadmanArmed {
                        try? await Task.sleep(nanoseconds: 100_000_000)
                        continue
                    }
                    tally.resetRequested()
                    // A software e-stop is released on purpose; a reset alone is refused for it.
                    let release = loop.snapshot().stopCause == .softwareEstop
                    let feedback = await loop.run(release ? .releaseEstop : .resetFault, timeout: 3)
                    if feedback?.state != .done {
                        tally.resetFailed("\(release ? "release" : "reset"): \(feedback.map { "\($0.state)" } ?? "no answer")"
                            + (feedback?.problem.map { " (\($0))" } ?? ""))
                    }
                    if loop.snapshot().stopCause != nil { try? await Task.sleep(nanoseconds: 300_000_000) }
                }
            }
        }
        // The faults.
        let injector = Task {
            var random = SeededRandom(seed: seed)
            while !Task.isCancelled && Date() < deadline {
                try? await Task.sleep(nanoseconds: UInt64(Double.random(in: 8...20, using: &random) * 1e9))
                guard !Task.isCancelled else { break }
                switch Int.random(in: 0..<7, using: &random) {
                case 0:
                    let ms = Int.random(in: 1000...10_000, using: &random)
                    simulator.faults.enqueue(.linkDrop(milliseconds: ms))
                    tally.count(fault: "linkDrop")
                case 1:
                    simulator.model.inject(.driveFault(device: "chassis", code: 0x7500))
                    tally.count(fault: "driveFault")
                case 2:
                    simulator.model.inject(.driveFault(device: "lift", code: 0x7500))
                    tally.count(fault: "driveFault")
                case 3:
                    simulator.model.inject(.reboot)
                    tally.count(fault: "reboot")
                case 4:
                    simulator.model.inject(.detectorOverload(true))
                    tally.count(fault: "detectorOverload")
                    try? await Task.sleep(nanoseconds: 1_500_000_000)
                    simulator.model.inject(.detectorOverload(false))
                case 5:
                    tally.silencePhone(seconds: Double.random(in: 1.5...4, using: &random))
                    tally.count(fault: "staleLease")
                default:
                    loop.submit(.estop)
                    tally.count(fault: "estop")
                }
            }
        }
        // The monitor.
        let monitor = Task.detached {
            var stoppedSince: Date?
            var immediate = false
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 5_000_000)
                let s = loop.snapshot()
                let t = simulator.model.truth()
                let now = Date()
                if let cause = s.stopCause {
                    if stoppedSince == nil { stoppedSince = now; immediate = cause.isImmediate }
                } else {
                    stoppedSince = nil
                }
                if let since = stoppedSince {
                    let held = now.timeIntervalSince(since)
                    // Power comes back during an officer's reset, before the stop clears: that is the reset working.
                    let resetting = tally.lastResetRequest.map { $0 >= since } ?? false
                    if immediate && held > 1 && t.motionPowerOn && !resetting { tally.unsafe("drive power on \(String(format: "%.1f", held)) s after \(s.stopCause.map { "\($0)" } ?? "")") }
                    if held > 2 && (abs(t.speedMetresPerSecond) > 0.02 || abs(t.liftSpeedMetresPerSecond) > 0.01) {
                        tally.unsafe("moving \(String(format: "%.1f", held)) s after a stop: \(t.speedMetresPerSecond) m/s, lift \(t.liftSpeedMetresPerSecond) m/s")
                    }
                }
                let silent = now.timeIntervalSince(tally.lastKeepAlive)
                if silent > deadmanSeconds + 1.5 && (abs(t.speedMetresPerSecond) > 0.02 || abs(t.liftSpeedMetresPerSecond) > 0.01) {
                    tally.unsafe("moving \(String(format: "%.1f", silent)) s after the last keep-alive (a stale lease): \(t.speedMetresPerSecond) m/s, lift \(t.liftSpeedMetresPerSecond) m/s")
                }
                // The switches are at 0.290 and 2.810 m (homing stops on the lower one); 1 mm
                // beyond them is rounding (a soak once flagged 0.28999999999999990 m).
                if t.liftMetres < 0.289 || t.liftMetres > 2.811 { tally.unsafe("lift at \(t.liftMetres) m, beyond its end stops") }
                if t.x > footprint.minX + 0.05, t.x < footprint.maxX - 0.05, t.y > footprint.minY + 0.05, t.y < footprint.maxY - 0.05 {
                    tally.unsafe("chassis inside the container at (\(t.x), \(t.y))")
                }
                tally.sampleMemory()
            }
        }

        var resume: String?
        var memorySamples: [(at: Date, use: MemoryUse)] = []
        while Date() < deadline {
            let session: ScanSession
            do {
                if let id = resume {
                    session = try ScanSession.reopen(store: store, loop: loop, scanId: id, officer: "soak", timeScale: timeScale)
                } else {
                    session = try ScanSession.create(store: store, loop: loop, plan: ScanPlan(container: placement, profile: profile),
                                                     robotId: "soak", officer: "soak", timeScale: timeScale)
                }
            } catch {
                tally.count(outcome: "could not start: \(error)")
                try await Task.sleep(nanoseconds: 1_000_000_000)
                continue
            }
            // After the deadline the scan in hand gets 3 minutes more, then it is aborted.
            let executor = session.executor
            let watchdog = Task {
                while !Task.isCancelled && Date() < deadline.addingTimeInterval(180) { try? await Task.sleep(nanoseconds: 500_000_000) }
                if !Task.isCancelled { executor.abort() }
            }
            let started = Date()
            let reporter = Task {
                while !Task.isCancelled {
                    guard (try? await Task.sleep(nanoseconds: 15_000_000_000)) != nil else { break }
                    let p = executor.progress
                    let s = loop.snapshot()
                    let t = simulator.model.truth()
                    say(String(format: "  %@ %d/%d points, stop: %@, waiting: %@, at (%.2f, %.2f) lift %.2f (true %.2f, %@), dose %.3f, overload flag %@, %@",
                               p.phase.rawValue, p.completedPoints, p.totalPoints, s.stopCause.map { "\($0)" } ?? "none", p.waitingForReset ?? "no",
                               s.xMetres, s.yMetres, s.liftHeightMetres, t.liftMetres, s.liftHomed ? "homed" : "not homed",
                               t.doseRateMicrosievertsPerHour, s.detectorOverload ? "set" : "clear", MemoryUse.now().description))
                }
            }
            let ending = await session.run()
            reporter.cancel()
            watchdog.cancel()
            say(String(format: "scan %@: %@ after %.0f s (%@)", String(session.scanId.prefix(8)), "\(ending)", Date().timeIntervalSince(started),
                         "\(session.executor.progress.completedPoints)/\(session.plan.points.count) points"))
            switch ending {
            case .done(let verdict):
                tally.count(outcome: "done (\(verdict.outcome.rawValue))")
                resume = nil
                if verdict.outcome != .pass { explain(verdict, store: store, scanId: session.scanId) }
            case .refused(let message):
                tally.count(outcome: message.contains("overload") ? "refused (detector overload in a reading)" : "refused")
                resume = nil
            case .aborted:
                tally.count(outcome: "aborted")
                resume = nil
            case .failed:
                tally.count(outcome: "interrupted, resumed")
                resume = session.scanId
            }
            if resume == nil {
                try await checkStore(store, scanId: session.scanId, plan: session.plan, done: { if case .done = ending { return true } else { return false } }(), tally: tally)
                memorySamples.append((Date(), MemoryUse.now()))
            }
        }
        injector.cancel()
        officer.cancel()
        phone.cancel()
        simulator.faults.setRates(FaultInjector.Rates())
        monitor.cancel()
        let verification = try store.verify()
        let stats = loop.statistics()
        for contact in simulator.model.contacts {
            tally.unsafe(String(format: "a person touched at %.1f s of robot time, the chassis at %.2f m/s", contact.atSeconds, contact.speedMetresPerSecond))
        }
        let people = (stops: simulator.model.protectiveStops.count, held: loop.snapshot().protectiveStops, slowed: loop.snapshot().fieldSlowdowns)
        memorySamples.append((Date(), MemoryUse.now()))
        robot.stop()
        try? FileManager.default.removeItem(at: directory)

        say("")
        tally.report(injectedBus: simulator.faults.counts())
        say("store: integrity \(verification.integrity), \(verification.scans) scans, \(verification.readings) readings, "
              + "\(verification.problemCount) chain problems")
        say("people: \(people.stops) protective stops by the firmware, \(people.held) moves held, \(people.slowed) slow-downs, "
              + "\(simulator.model.contacts.count) contacts")
        say("loop: \(stats.ticks) ticks, \(stats.overruns) overruns, wake p99 \(stats.wakeLatencyP99) µs, max \(stats.wakeLatencyMax) µs")
        MemoryUse.report(memorySamples, say: say)
        let failed = tally.unsafeCount > 0 || tally.lost > 0 || tally.duplicated > 0 || !verification.isValid
        say(failed ? "soak: FAILED" : "soak: passed (0 unsafe events, 0 readings lost or duplicated)")
        exit(failed ? 1 : 0)
    }

    /// Why a clean container did not pass: the points over the threshold and the readings behind them.
    static func explain(_ verdict: Verdict, store: ScanStore, scanId: String) {
        guard let sets = try? store.readingSets(scanId: scanId) else { return }
        func describe(_ r: DoseReading) -> String {
            String(format: "%u counts/%.2f s = %.1f cps at %@", r.counts, r.seconds, r.countRatePerSecond,
                   r.takenAt.formatted(.iso8601.time(includingFractionalSeconds: true)))
        }
        say(String(format: "  verdict %@: background %.4f ± %.4f (%d readings, drift %.4f), threshold %.4f, k %.2f",
                   verdict.outcome.rawValue, verdict.backgroundMean, verdict.backgroundDeviation, verdict.backgroundReadings,
                   verdict.backgroundDrift, verdict.decisionThreshold, verdict.k))
        say("  background: " + sets.background.map { String(format: "%.1f", $0.countRatePerSecond) }.joined(separator: " ") + " cps")
        for point in verdict.points where point.outcome != .pass {
            say(String(format: "  point %d %@: gross %.4f, net %.4f ± %.4f", point.pointIndex, point.outcome.rawValue,
                       point.grossMean, point.net, point.netUncertainty))
            for r in sets.points[point.pointIndex] ?? [] { say("    " + describe(r)) }
        }
    }

    /// A finished scan's readings against its plan: no set with more than
    /// `readingsPerPoint` readings, every point one whole accepted set, the background
    /// complete, re-measures within their count. Sets cut short are kept and counted apart.
    static func checkStore(_ store: ScanStore, scanId: String, plan: ScanPlan, done: Bool, tally: Tally) async throws {
        let recorded = try store.readings(scanId: scanId)
        let profile = plan.profile
        let accepted = AcceptedReadings(recorded, readingsPerPoint: profile.readingsPerPoint)
        let points = accepted.points
        let background = accepted.background
        let remeasures = accepted.remeasures
        let bySet = Dictionary(grouping: recorded.filter { $0.kind == .point }) { "\($0.pointIndex)/\($0.set)" }
        for (key, readings) in bySet where readings.count > profile.readingsPerPoint {
            tally.duplicate("scan \(scanId) point/set \(key): \(readings.count) readings in one set")
        }
        if accepted.supersededReadings > 0 { tally.superseded(accepted.supersededReadings) }
        for (index, readings) in remeasures where readings.count > profile.remeasureCount {
            tally.duplicate("scan \(scanId) point \(index): \(readings.count) re-measures")
        }
        let wantBackground = profile.backgroundReadings * (profile.backgroundRepeatAtEnd ? 2 : 1)
        if background.count > wantBackground { tally.duplicate("scan \(scanId): \(background.count) background readings") }
        guard done else { return }
        for point in plan.points where (points[point.index]?.count ?? 0) < profile.readingsPerPoint {
            tally.lose("scan \(scanId) point \(point.index): \(points[point.index]?.count ?? 0) of \(profile.readingsPerPoint) readings")
        }
        if background.count < wantBackground { tally.lose("scan \(scanId): \(background.count) of \(wantBackground) background readings") }
    }
}

/// What the soak saw.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var faults: [String: Int] = [:]
    private var stops: [String: Int] = [:]
    private var outcomes: [String: Int] = [:]
    private var unsafeEvents: [String] = []
    private(set) var lost = 0
    private(set) var duplicated = 0
    /// Readings kept in the record but not counted (sets cut short by a stop and taken again).
    private(set) var supersededReadings = 0
    private var notes: [String] = []
    private var peakMemory = 0

    var unsafeCount: Int { lock.withLock { unsafeEvents.count } }
    private var resetAt: Date?
    var lastResetRequest: Date? { lock.withLock { resetAt } }
    func resetRequested() { lock.withLock { resetAt = Date() } }

    private var keepAliveAt = Date()
    private var silentUntil = Date.distantPast
    /// When the phone last sent a keep-alive (or armed the deadman).
    var lastKeepAlive: Date { lock.withLock { keepAliveAt } }
    func keptAlive() { lock.withLock { keepAliveAt = Date() } }
    /// The phone sends nothing until then (the injected stale lease).
    var phoneSilent: Bool { lock.withLock { Date() < silentUntil } }
    func silencePhone(seconds: Double) { lock.withLock { silentUntil = Date().addingTimeInterval(seconds) } }

    private var resetFailures = 0
    private var lastResetFailureSaid = Date.distantPast
    /// A reset that did not go through: counted, and said at most every 10 s.
    func resetFailed(_ what: String) {
        let shouldSay = lock.withLock {
            resetFailures += 1
            guard Date().timeIntervalSince(lastResetFailureSaid) > 10 else { return false }
            lastResetFailureSaid = Date()
            return true
        }
        if shouldSay { say("  officer: \(what)") }
    }

    func count(fault: String) {
        lock.withLock { faults[fault, default: 0] += 1 }
        say("  \(Date().formatted(.iso8601.time(includingFractionalSeconds: true))) inject \(fault)")
    }
    func count(outcome: String) { lock.withLock { outcomes[outcome, default: 0] += 1 } }
    func count(stop: String) { lock.withLock { stops[stop, default: 0] += 1 } }
    func unsafe(_ what: String) { lock.withLock { if unsafeEvents.count < 1000 { unsafeEvents.append(what) } } }
    func lose(_ what: String) { lock.withLock { lost += 1; notes.append("LOST " + what) } }
    func duplicate(_ what: String) { lock.withLock { duplicated += 1; notes.append("DUPLICATED " + what) } }
    func superseded(_ count: Int) { lock.withLock { supersededReadings += count } }

    func sampleMemory() {
        let now = MemoryUse.residentBytes()
        lock.withLock { peakMemory = max(peakMemory, now) }
    }

    func report(injectedBus: [String: Int]) {
        lock.withLock {
            say("scans: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
            var all = faults
            for (k, v) in injectedBus { all["bus " + k, default: 0] += v }
            say("faults injected: " + all.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            say("resets that did not go through (retried): \(resetFailures)")
            say("safe stops: \(stops.values.reduce(0, +)) (" + stops.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")")
            say("unsafe events: \(unsafeEvents.count)")
            for e in unsafeEvents.prefix(10) { say("  UNSAFE \(e)") }
            say("readings lost: \(lost), duplicated: \(duplicated); kept but not counted (sets cut short): \(supersededReadings)")
            for n in notes.prefix(10) { say("  \(n)") }
            say(String(format: "peak resident memory: %.1f MiB", Double(peakMemory) / 1_048_576))
        }
    }
}

/// Writes a line at once (stdout may be a pipe or a file).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
