import BenchmarkSupport
import Foundation
import RobotControl
import RobotSimulator
import RobotTesting

/// The people campaign (issue 18, target "0 contacts in 1 000 seeded encounters with a
/// person crossing the path at up to 1.6 m/s; stopping always inside the protective
/// field"). Each encounter: the robot walks 12 m at a random commanded speed (0.1-0.5
/// m/s); one person walks a straight line across its path at a random point 3-9 m ahead,
/// at a random angle (30-150° to the path, from either side) and speed (0.3-1.6 m/s),
/// timed so that without a scanner they would meet the robot's front there, give or take
/// a second. The same encounter runs twice: with the protective-field scanner (the real
/// loop, the simulator's firmware H9) and without it, to show how many of the encounters
/// would have been contacts. Judged on the simulator's truth: a contact is the person's
/// 0.2 m disc inside the chassis outline while the chassis moves.
///
///     ROBOT_BENCHMARKS=1 swift build -c release --product EncounterBench
///     .build/release/EncounterBench [--encounters 1000] [--seed 1] [--no-baseline] [--without-slow-down]
///
/// `--without-slow-down` sets the warning speed to the chassis' top speed, so the loop
/// never slows: the firmware's protective stop alone has to keep people untouched.
@main
struct EncounterBench {
    struct Encounter {
        var commandedSpeed: Double
        var person: WalkingPerson
        var walkStartsAt: Double
    }

    struct Outcome {
        var contacts = 0
        var stops: [ProtectiveStopRecord] = []
        var closestMetres = Double.infinity
        var state: CommandState?
        var seconds = 0.0
        var slowdowns: UInt64 = 0
    }

    static let outline = RobotSettings()
    static let walkStartsAt = 1.0

    static func main() async throws {
        let arguments = BenchmarkArguments()
        let count = arguments.int("--encounters", 1000)
        let seed = arguments.seed()
        let baseline = !arguments.has("--no-baseline")
        var configuration = ControlConfiguration()
        if arguments.has("--without-slow-down") { configuration.people.warningSpeedMetresPerSecond = configuration.chassisMaxSpeedMetresPerSecond }
        var random = SeededRandom(seed: seed)
        var guarded: [Outcome] = [], bare: [Outcome] = []
        let started = Date()
        for n in 0..<count {
            let encounter = makeEncounter(&random)
            guarded.append(try await run(encounter, scanner: true, seed: seed &+ UInt64(n), configuration: configuration))
            if baseline { bare.append(try await run(encounter, scanner: false, seed: seed &+ UInt64(n), configuration: configuration)) }
            if (n + 1) % 100 == 0 {
                say("\(n + 1) encounters, \(guarded.filter { $0.contacts > 0 }.count) with a contact, \(Int(Date().timeIntervalSince(started))) s")
            }
        }
        report(guarded: guarded, bare: bare, seed: seed, wallSeconds: Date().timeIntervalSince(started),
               slowDown: !arguments.has("--without-slow-down"))
    }

    static func makeEncounter(_ random: inout SeededRandom) -> Encounter {
        let speed = 0.1 + 0.4 * random.uniform()
        let crossing = 3 + 6 * random.uniform()
        let walking = 0.3 + 1.3 * random.uniform()
        let angle = (30 + 120 * random.uniform()) * .pi / 180
        let fromLeft = random.uniform() < 0.5
        // The walking direction: along the path by cos(angle), across it towards the other side.
        let direction = (x: cos(angle), y: fromLeft ? -sin(angle) : sin(angle))
        // When the robot's front would reach the person's near edge at the crossing point.
        let acceleration = ControlConfiguration().chassisAccelerationMetresPerSecond2
        let reference = crossing - outline.outlineForwardMetres - 0.2
        let rampMetres = speed * speed / (2 * acceleration)
        let travel = reference <= rampMetres ? (2 * reference / acceleration).squareRoot()
            : speed / acceleration + (reference - rampMetres) / speed
        let meetAt = walkStartsAt + travel + (random.uniform() * 2 - 1)
        let approach = 8.0
        let person = WalkingPerson(fromX: crossing - direction.x * approach, fromY: -direction.y * approach,
                                   toX: crossing + direction.x * approach, toY: direction.y * approach,
                                   speedMetresPerSecond: walking, startSeconds: meetAt - approach / walking)
        return Encounter(commandedSpeed: speed, person: person, walkStartsAt: walkStartsAt)
    }

    static func run(_ encounter: Encounter, scanner: Bool, seed: UInt64, configuration: ControlConfiguration) async throws -> Outcome {
        var scenario = Scenario(name: "encounter")
        scenario.seed = seed
        scenario.startLiftMetres = 0.4
        scenario.people = [encounter.person]
        if !scanner { scenario.settings.fieldScanner = nil }
        let robot = try await VirtualRobot(scenario: scenario, configuration: configuration)
        robot.run(until: { robot.seconds >= encounter.walkStartsAt }, within: 5)
        let id = robot.loop.submit(.walkTo(x: 12, y: 0, speedMetresPerSecond: encounter.commandedSpeed), expiresIn: 5)
        var outcome = Outcome()
        let begun = robot.seconds
        robot.run(until: {
            let truth = robot.model.truth()
            // How close the person came while the chassis moved (standing, it is walked round).
            if truth.speedMetresPerSecond != 0, let p = encounter.person.position(atSeconds: robot.seconds) {
                outcome.closestMetres = min(outcome.closestMetres, clearance(person: p, robot: truth))
            }
            return robot.loop.feedback(id)?.state.isFinal == true
        }, within: 180)
        outcome.state = robot.loop.feedback(id)?.state
        outcome.seconds = robot.seconds - begun
        outcome.contacts = robot.model.contacts.count
        outcome.stops = robot.model.protectiveStops
        outcome.slowdowns = robot.loop.snapshot().fieldSlowdowns
        return outcome
    }

    /// The gap between the person's disc and the chassis outline, metres (negative inside).
    static func clearance(person p: (x: Double, y: Double), robot: FirmwareModel.Truth) -> Double {
        let h = robot.headingDegrees * .pi / 180
        let dx = p.x - robot.x, dy = p.y - robot.y
        let forward = dx * cos(h) + dy * sin(h), left = -dx * sin(h) + dy * cos(h)
        let df = max(-outline.outlineRearMetres - forward, 0, forward - outline.outlineForwardMetres)
        let dl = max(-outline.outlineHalfWidthMetres - left, 0, left - outline.outlineHalfWidthMetres)
        return (df * df + dl * dl).squareRoot() - 0.2
    }

    static func report(guarded: [Outcome], bare: [Outcome], seed: UInt64, wallSeconds: Double, slowDown: Bool) {
        func percentile(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return .nan }
            return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
        }
        let stops = guarded.flatMap(\.stops)
        let ratios = stops.compactMap { s in s.stoppingDistanceMetres.map { $0 / s.fieldReachMetres } }
        let outside = ratios.filter { $0 > 1 }.count
        let closest = guarded.map(\.closestMetres).filter(\.isFinite)
        let encountersWithStops = guarded.filter { !$0.stops.isEmpty }.count
        print("EncounterBench: \(guarded.count) encounters, seed \(seed), \(String(format: "%.0f", wallSeconds)) s wall\(slowDown ? "" : ", without the warning-field slow-down")")
        print(String(format: "with the scanner:    %d contacts in %d encounters; %d protective stops in %d encounters; %d slow-downs",
                     guarded.filter { $0.contacts > 0 }.count, guarded.count, stops.count, encountersWithStops,
                     guarded.map(\.slowdowns).reduce(0, +)))
        let distances = stops.compactMap(\.stoppingDistanceMetres)
        print(String(format: "  stopping distance (detection to standstill): max %.3f m, p95 %.3f m; / protective field reach ahead: max %.2f; stops outside the field: %d",
                     distances.max() ?? 0, percentile(distances, 0.95), ratios.max() ?? 0, outside))
        print(String(format: "  closest approach while moving (disc to outline): min %.3f m, p5 %.3f m, median %.3f m",
                     closest.min() ?? .nan, percentile(closest, 0.05), percentile(closest, 0.5)))
        let unfinished = guarded.filter { $0.state != .done }.count
        print(String(format: "  walks finished: %d of %d; mean walk %.1f s", guarded.count - unfinished, guarded.count,
                     guarded.map(\.seconds).reduce(0, +) / Double(max(1, guarded.count))))
        guard !bare.isEmpty else { return }
        print(String(format: "without the scanner: %d contacts in %d encounters; mean walk %.1f s",
                     bare.filter { $0.contacts > 0 }.count, bare.count, bare.map(\.seconds).reduce(0, +) / Double(bare.count)))
    }
}
