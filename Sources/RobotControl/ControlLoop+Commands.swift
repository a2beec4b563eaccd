import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// Command validation and set-points: what the loop accepts, what it refuses and why,
/// and how an accepted motion becomes a drive set-point.
extension ControlLoop {
    // MARK: Commands

    func handle(_ entry: CommandMailbox.Entry, _ inputs: Inputs) {
        let id = entry.id
        if inputs.now > entry.expiresAtNanoseconds {
            mailbox.update(id, .expired, problem: .expired)
            return
        }
        switch entry.command {
        case .estop:
            // Not queued by `submit`; kept for completeness.
            softwareEstopRequested = true
            trip(.softwareEstop, inputs)
            mailbox.update(id, .done)
            return
        case .stop:
            overrideMotion(with: id)
            mailbox.update(id, .done)
            return
        case .resetFault, .releaseEstop:
            if entry.estopsBefore < estopRequestsServed {
                // Sent before the latest e-stop was pressed: it must not undo that stop.
                mailbox.update(id, .blocked, problem: .estopPressedSince)
                return
            }
            if case .resetFault = entry.command, stopCause == .softwareEstop {
                mailbox.update(id, .blocked, problem: .causeStillPresent(.softwareEstop))
                return
            }
            if let present = causeStillPresent(inputs) {
                mailbox.update(id, .blocked, problem: .causeStillPresent(present))
                return
            }
            softwareEstopRequested = false
            reset.begin(commandId: id, now: inputs.now)
            mailbox.update(id, .running)
            return
        case .measure(let seconds):
            guard seconds > 0, seconds <= 600 else {
                mailbox.update(id, .blocked, problem: .outOfRange(what: "dwell", value: seconds, minimum: 0.1, maximum: 600, unit: "s"))
                return
            }
            guard let block = inputs.detectorBlock, block.consecutiveFailures == 0, inputs.detector != nil, detectorInfo != nil else {
                mailbox.update(id, .blocked, problem: .deviceUnavailable(device: .detector))
                return
            }
            if measurement.active { mailbox.update(measurement.commandId, .overridden, problem: .overridden) }
            measurement.begin(commandId: id, dwellMilliseconds: UInt32(seconds * 1000), afterSequence: block.sequence)
            mailbox.update(id, .running)
            return
        default:
            break
        }
        // Motion commands.
        if motionInhibited.load(ordering: .relaxed), entry.command != .lift(heightMetres: configuration.liftParkMetres) {
            mailbox.update(id, .blocked, problem: .shuttingDown)
            return
        }
        if let cause = stopCause {
            mailbox.update(id, .blocked, problem: .stopped(cause))
            return
        }
        if let problem = prepareMotion(entry.command, inputs) {
            mailbox.update(id, .blocked, problem: problem)
            return
        }
        var channel = entry.command.usesChassis ? chassis : lift
        if channel.isBusy { mailbox.update(channel.commandId, .overridden, problem: .overridden) }
        channel.commandId = id
        channel.phase = .enabling
        channel.allowedSeconds = expectedSeconds(entry.command, inputs) * 1.5 + 3
        channel.deadlineNanoseconds = inputs.now &+ UInt64(channel.allowedSeconds * 1e9)
        if entry.command.usesChassis { chassis = channel } else { lift = channel }
        mailbox.update(id, .running)
    }

    /// Validates a motion command and writes its set-point into the channel.
    func prepareMotion(_ command: RobotCommand, _ inputs: Inputs) -> CommandProblem? {
        let c = configuration
        switch command {
        case let .walk(metres, speed):
            guard abs(metres) <= c.maximumWalkMetres, metres.isFinite else {
                return .outOfRange(what: "walk distance", value: metres, minimum: -c.maximumWalkMetres, maximum: c.maximumWalkMetres, unit: "m")
            }
            guard let pose = inputs.chassis else { return .deviceUnavailable(device: .chassis) }
            let h = pose.headingDegrees * .pi / 180
            let tx = pose.positionXMetres + metres * cos(h)
            let ty = pose.positionYMetres + metres * sin(h)
            if let problem = checkPath(fromX: pose.positionXMetres, fromY: pose.positionYMetres, toX: tx, toY: ty) { return problem }
            if let problem = checkSpeed(speed) { return problem }
            if let problem = fillChassis(mode: .moveRelative, a: Int32((metres * 1000).rounded()), b: 0, speed: speed) { return problem }
        case let .walkTo(x, y, speed):
            guard let pose = inputs.chassis else { return .deviceUnavailable(device: .chassis) }
            let distance = ((x - pose.positionXMetres) * (x - pose.positionXMetres) + (y - pose.positionYMetres) * (y - pose.positionYMetres)).squareRoot()
            guard distance <= c.maximumWalkMetres, x.isFinite, y.isFinite else {
                return .outOfRange(what: "walk distance", value: distance, minimum: 0, maximum: c.maximumWalkMetres, unit: "m")
            }
            if let problem = checkPath(fromX: pose.positionXMetres, fromY: pose.positionYMetres, toX: x, toY: y) { return problem }
            if let problem = checkSpeed(speed) { return problem }
            if let problem = fillChassis(mode: .moveTo, a: Int32((x * 1000).rounded()), b: Int32((y * 1000).rounded()), speed: speed) { return problem }
        case .turn(let degrees):
            guard abs(degrees) <= 360, degrees.isFinite else {
                return .outOfRange(what: "turn", value: degrees, minimum: -360, maximum: 360, unit: "deg")
            }
            if let problem = fillChassis(mode: .turnRelative, a: Int32((degrees * 100).rounded()), b: 0, speed: nil) { return problem }
        case .turnTo(let heading):
            guard abs(heading) <= 180, heading.isFinite else {
                return .outOfRange(what: "heading", value: heading, minimum: -180, maximum: 180, unit: "deg")
            }
            if let problem = fillChassis(mode: .turnTo, a: Int32((heading * 100).rounded()), b: 0, speed: nil) { return problem }
        case .lift(let height):
            guard height >= c.liftMinimumMetres, height <= c.liftMaximumMetres, height.isFinite else {
                return .outOfRange(what: "lift height", value: height, minimum: c.liftMinimumMetres, maximum: c.liftMaximumMetres, unit: "m")
            }
            guard let l = inputs.lift else { return .deviceUnavailable(device: .lift) }
            guard l.flags.contains(.homed) else { return .liftNotHomed }
            if let problem = fillLift(mode: .profilePosition, heightMetres: height) { return problem }
        case .homeLift:
            guard inputs.lift != nil else { return .deviceUnavailable(device: .lift) }
            if let problem = fillLift(mode: .homing, heightMetres: c.liftMinimumMetres) { return problem }
        default:
            return nil
        }
        return nil
    }

    func checkSpeed(_ speed: Double?) -> CommandProblem? {
        guard let speed else { return nil }
        let maximum = configuration.chassisMaxSpeedMetresPerSecond
        guard speed >= 0.01, speed <= maximum else {
            return .outOfRange(what: "speed", value: speed, minimum: 0.01, maximum: maximum, unit: "m/s")
        }
        return nil
    }

    /// A path may not enter a keep-out zone. A robot already inside one (pushed into a
    /// container's margin) may leave it by the short way: at most
    /// `keepOutEscapeMetres` of the path inside, so never across the container.
    func checkPath(fromX: Double, fromY: Double, toX: Double, toY: Double) -> CommandProblem? {
        let blocked = configuration.keepOutZones.contains { zone in
            if zone.contains(x: fromX, y: fromY) {
                return zone.contains(x: toX, y: toY)
                    || zone.lengthInside(fromX: fromX, fromY: fromY, toX: toX, toY: toY) > Self.keepOutEscapeMetres
            }
            return zone.intersects(fromX: fromX, fromY: fromY, toX: toX, toY: toY)
        }
        return blocked ? .keepOut(x: toX, y: toY) : nil
    }

    /// How much of a path leaving a keep-out zone may run inside it.
    static let keepOutEscapeMetres = 0.25

    /// The chassis set-point, through the typed block codec (ranges from the map).
    func fillChassis(mode: ChassisMode, a: Int32, b: Int32, speed: Double?) -> CommandProblem? {
        let c = configuration
        let command = chassisCommand(mode: mode, a: a, b: b, speed: fieldSpeed(for: speed ?? c.chassisMaxSpeedMetresPerSecond))
        do {
            try command.encode(into: &chassis.setpoint)
        } catch {
            return .busError("the chassis set-point does not fit the register map: \(error)")
        }
        chassisTarget = (mode, Double(a), Double(b))
        return nil
    }

    /// A chassis set-point at `speed` with the configured turn rate and acceleration.
    func chassisCommand(mode: ChassisMode, a: Int32, b: Int32, speed: Double) -> ChassisCommand {
        let c = configuration
        return ChassisCommand(
            controlword: [], mode: mode, targetA: a, targetB: b,
            speedMillimetresPerSecond: clampedRaw(speed * 1000, to: ChassisCommand.speedRange),
            turnRateCentidegreesPerSecond: clampedRaw(c.turnRateDegreesPerSecond * 100, to: ChassisCommand.turnRateRange),
            accelerationMillimetresPerSecond2: clampedRaw(c.chassisAccelerationMetresPerSecond2 * 1000, to: ChassisCommand.accelerationRange))
    }

    /// The lift set-point, through the typed block codec (ranges from the map).
    func fillLift(mode: LiftMode, heightMetres: Double) -> CommandProblem? {
        let c = configuration
        let command = LiftCommand(
            controlword: [], mode: mode,
            targetHeightMillimetres: clampedRaw(heightMetres * 1000, to: LiftCommand.targetHeightRange),
            speedMillimetresPerSecond: clampedRaw(c.liftMaxSpeedMetresPerSecond * 1000, to: LiftCommand.speedRange),
            accelerationMillimetresPerSecond2: clampedRaw(c.liftAccelerationMetresPerSecond2 * 1000, to: LiftCommand.accelerationRange))
        do {
            try command.encode(into: &lift.setpoint)
        } catch {
            return .busError("the lift set-point does not fit the register map: \(error)")
        }
        liftTarget = command
        return nil
    }

    func expectedSeconds(_ command: RobotCommand, _ inputs: Inputs) -> Double {
        let c = configuration
        switch command {
        case let .walk(metres, speed):
            return TrapezoidalProfile(distance: metres, maxSpeed: speed ?? c.chassisMaxSpeedMetresPerSecond,
                                      acceleration: c.chassisAccelerationMetresPerSecond2).duration
        case let .walkTo(x, y, speed):
            let px = inputs.chassis?.positionXMetres ?? x
            let py = inputs.chassis?.positionYMetres ?? y
            let distance = ((x - px) * (x - px) + (y - py) * (y - py)).squareRoot()
            return 180 / c.turnRateDegreesPerSecond + 1
                + TrapezoidalProfile(distance: distance, maxSpeed: speed ?? c.chassisMaxSpeedMetresPerSecond,
                                     acceleration: c.chassisAccelerationMetresPerSecond2).duration
        case .turn(let degrees):
            return abs(degrees) / c.turnRateDegreesPerSecond + 1
        case .turnTo:
            return 180 / c.turnRateDegreesPerSecond + 1
        case .lift(let height):
            let from = inputs.lift.map { Double($0.heightMillimetres) / 1000 } ?? c.liftMinimumMetres
            return TrapezoidalProfile(distance: height - from, maxSpeed: c.liftMaxSpeedMetresPerSecond,
                                      acceleration: c.liftAccelerationMetresPerSecond2).duration
        case .homeLift:
            return 2.8 / 0.05 + 2
        default:
            return 0
        }
    }

    func overrideMotion(with id: UInt64) {
        if chassis.isBusy { mailbox.update(chassis.commandId, .overridden, problem: .overridden) }
        if lift.isBusy { mailbox.update(lift.commandId, .overridden, problem: .overridden) }
        haltAxes()
        chassis.phase = .idle
        lift.phase = .idle
    }

    /// Decelerates enabled axes and holds them (halt bit, idle mode), keeping them enabled.
    /// Drives that are not enabled are left alone: a halt must never enable one.
    func haltAxes() {
        let chassisState = bus.latest(unit: chassis.unit, block: ChassisStatus.spec).flatMap { try? ChassisStatus(registers: $0.registers) }?.driveState
        let liftState = bus.latest(unit: lift.unit, block: LiftStatus.spec).flatMap { try? LiftStatus(registers: $0.registers) }?.driveState
        if chassisState == .operationEnabled || chassis.isBusy {
            chassis.postIdle(bus, controlword: Controlword.enableOperationCommand.union(.halt))
        }
        if liftState == .operationEnabled || lift.isBusy {
            lift.postIdle(bus, controlword: Controlword.enableOperationCommand.union(.halt))
        }
    }

    /// The bus does not send a failed write again, so a lost halt would let a drive run on
    /// to its old target. For an axis with no command (after a stop, a trip, a timeout or a
    /// failed command) whose last write failed while its drive still has operation enabled,
    /// post the halt again until one lands.
    func reassertHalt(_ inputs: Inputs) {
        guard !reset.active else { return }
        let halt = Controlword.enableOperationCommand.union(.halt)
        if !chassis.isBusy, inputs.chassis?.driveState == .operationEnabled, bus.status(of: chassis.slot).failed(chassis.postedSequence) {
            chassis.postIdle(bus, controlword: halt)
        }
        if !lift.isBusy, inputs.lift?.driveState == .operationEnabled, bus.status(of: lift.slot).failed(lift.postedSequence) {
            lift.postIdle(bus, controlword: halt)
        }
    }
}
