import FirmwareProtocol
import Foundation

/// Someone walking through the yard: from one point to another at a steady speed, then
/// gone. With `everySeconds` they walk the same line again each period (a yard's
/// regular traffic, for scenarios).
public struct WalkingPerson: Sendable, Codable, Equatable {
    public var fromX: Double
    public var fromY: Double
    public var toX: Double
    public var toY: Double
    public var speedMetresPerSecond: Double
    public var startSeconds: Double
    public var everySeconds: Double?
    /// A person as the scanner sees them at leg height, and as a chassis would touch them.
    public var radiusMetres: Double

    public init(fromX: Double, fromY: Double, toX: Double, toY: Double, speedMetresPerSecond: Double,
                startSeconds: Double, everySeconds: Double? = nil, radiusMetres: Double = 0.2) {
        self.fromX = fromX
        self.fromY = fromY
        self.toX = toX
        self.toY = toY
        self.speedMetresPerSecond = speedMetresPerSecond
        self.startSeconds = startSeconds
        self.everySeconds = everySeconds
        self.radiusMetres = radiusMetres
    }

    /// Where the person is at `seconds`, or nil while they are not in the yard.
    public func position(atSeconds seconds: Double) -> (x: Double, y: Double)? {
        var t = seconds - startSeconds
        guard t >= 0 else { return nil }
        // Standing still (a rig's test piece).
        if speedMetresPerSecond == 0 { return (fromX, fromY) }
        if let every = everySeconds, every > 0 { t = t.truncatingRemainder(dividingBy: every) }
        let length = hypot(toX - fromX, toY - fromY)
        let walked = t * speedMetresPerSecond
        guard walked <= length, length > 0 else { return nil }
        return (fromX + (toX - fromX) * walked / length, fromY + (toY - fromY) * walked / length)
    }
}

/// One protective stop (H9.2), as the simulator's truth saw it.
public struct ProtectiveStopRecord: Sendable, Equatable {
    /// When the scanner first saw something in the protective field.
    public var detectedAtSeconds: Double
    /// The chassis' forward speed then (0 in a turn on the spot).
    public var speedMetresPerSecond: Double
    /// How far the protective field reached ahead of the leading edge then (H9.1).
    public var fieldReachMetres: Double
    /// How far the chassis travelled from the detection to standstill; nil until it stands.
    public var stoppingDistanceMetres: Double?
}

/// A person touching the chassis outline while the chassis moves.
public struct PersonContact: Sendable, Equatable {
    public var atSeconds: Double
    public var person: Int
    public var speedMetresPerSecond: Double
}

/// The protective-field scanner (protocol 1.1, H9): fields sized from the measured speed
/// (H9.1), a quick stop one response time after something enters the protective field
/// (H9.2), the latch the controller reads (H9.3), a faulted scanner holding the chassis
/// (H9.4). It also keeps the truth campaigns are judged by: stops and contacts.
extension FirmwareModel {
    public func addPerson(_ person: WalkingPerson) {
        lock.lock()
        defer { lock.unlock() }
        people.append(person)
    }

    /// Everyone leaves the yard.
    public func removeAllPeople() {
        lock.lock()
        defer { lock.unlock() }
        people = []
        personInContact = []
        obstacleIndex = nil
    }

    /// Puts the rig's test piece (a 0.2 m disc) with its near side `metresAhead` of the
    /// chassis' leading edge, on its heading, or takes it away (nil).
    func placeObstacle(metresAhead: Double?) {
        if let i = obstacleIndex {
            // Gone: it stands where nobody can meet it, so the indices of the others stay.
            people[i] = WalkingPerson(fromX: 1e6, fromY: 1e6, toX: 1e6, toY: 1e6, speedMetresPerSecond: 0, startSeconds: 0)
            obstacleIndex = nil
        }
        guard let metresAhead else { return }
        let radius = 0.2, reach = settings.outlineForwardMetres + metresAhead + radius
        people.append(WalkingPerson(fromX: trueX + reach * cos(trueHeading), fromY: trueY + reach * sin(trueHeading),
                                    toX: trueX + reach * cos(trueHeading), toY: trueY + reach * sin(trueHeading),
                                    speedMetresPerSecond: 0, startSeconds: simulatedSeconds, radiusMetres: radius))
        obstacleIndex = people.count - 1
    }

    /// The protective field's extent in the robot's frame (forward, left), metres: a
    /// rectangle round the outline (H9.1), for the larger of the measured speed and the
    /// speed of the set-point being executed, so a move about to start is judged by the
    /// field it will need.
    func protectiveField(_ scanner: FieldScannerSettings) -> (rear: Double, front: Double, side: Double, reachAhead: Double) {
        let T = scanner.responseSeconds
        var v = abs(linear.velocity), w = abs(angular.velocity)
        var forward = linear.velocity >= 0
        switch chassisSegments.first {
        case .drive(let metres)?:
            v = max(v, linear.maxSpeed)
            if linear.velocity == 0 { forward = metres >= 0 }
        case .turn?, .turnBy?:
            w = max(w, angular.maxSpeed)
        case nil:
            break
        }
        if v < 1e-6 {
            // Standstill or a turn on the spot: all round, sized by the outermost corner's speed.
            let corner = hypot(max(settings.outlineForwardMetres, settings.outlineRearMetres), settings.outlineHalfWidthMetres)
            let reach = ProtectiveFieldMinimum.allRound(cornerSpeedMetresPerSecond: w * corner,
                                                        stopSeconds: w / (settings.turnQuickStopDegreesPerSecond2 * .pi / 180), responseSeconds: T)
            return (settings.outlineRearMetres + reach, settings.outlineForwardMetres + reach, settings.outlineHalfWidthMetres + reach, reach)
        }
        let reach = ProtectiveFieldMinimum.driving(speedMetresPerSecond: v, responseSeconds: T,
                                                   quickStopMetresPerSecond2: settings.chassisQuickStopMetresPerSecond2)
        let ahead = reach.ahead, side = settings.outlineHalfWidthMetres + reach.side
        return forward
            ? (settings.outlineRearMetres, settings.outlineForwardMetres + ahead, side, ahead)
            : (settings.outlineRearMetres + ahead, settings.outlineForwardMetres, side, ahead)
    }

    /// The person's centre in the robot's frame: forward and left of the reference point.
    private func robotFrame(_ x: Double, _ y: Double) -> (forward: Double, left: Double) {
        let dx = x - trueX, dy = y - trueY, h = trueHeading
        return (dx * cos(h) + dy * sin(h), -dx * sin(h) + dy * cos(h))
    }

    /// Whether a disc of `radius` at (forward, left) overlaps the rectangle.
    private static func overlaps(_ p: (forward: Double, left: Double), radius: Double,
                                 rear: Double, front: Double, side: Double) -> Bool {
        let df = max(-rear - p.forward, 0, p.forward - front)
        let dl = max(-side - p.left, 0, p.left - side)
        return df * df + dl * dl < radius * radius
    }

    /// Sets `fieldWarningNow` and `fieldProtectiveNow` for where everyone is now (H9.4).
    /// Returns the protective field's reach ahead.
    @discardableResult
    func evaluateFields(_ scanner: FieldScannerSettings) -> Double {
        let field = protectiveField(scanner)
        let beyond = ProtectiveFieldMinimum.warningBeyondMetres
        let forwardField = field.front - settings.outlineForwardMetres > field.rear - settings.outlineRearMetres + 1e-9
        let backwardField = field.rear - settings.outlineRearMetres > field.front - settings.outlineForwardMetres + 1e-9
        var protective = false, warning = false
        for person in people {
            guard let at = person.position(atSeconds: simulatedSeconds) else { continue }
            let p = robotFrame(at.x, at.y)
            if Self.overlaps(p, radius: person.radiusMetres, rear: field.rear, front: field.front, side: field.side) { protective = true }
            if Self.overlaps(p, radius: person.radiusMetres, rear: field.rear + (forwardField ? 0 : beyond),
                             front: field.front + (backwardField ? 0 : beyond), side: field.side + beyond) { warning = true }
        }
        let faulted = scanner.faulted || scannerFaultForced
        fieldProtectiveNow = protective || faulted
        fieldWarningNow = warning || protective || faulted
        if deviant(.protectiveStopNotLatched) && !fieldProtectiveNow { protectiveStopLatched = false }
        return field.reachAhead
    }

    /// The truth campaigns are judged by: a person inside the outline while it moves.
    func checkContacts() {
        let moving = abs(linear.velocity) > 1e-4 || abs(angular.velocity) > 1e-4
        for (index, person) in people.enumerated() {
            guard let at = person.position(atSeconds: simulatedSeconds) else {
                personInContact.remove(index)
                continue
            }
            let touching = Self.overlaps(robotFrame(at.x, at.y), radius: person.radiusMetres, rear: settings.outlineRearMetres,
                                         front: settings.outlineForwardMetres, side: settings.outlineHalfWidthMetres)
            if touching && moving && !personInContact.contains(index) {
                contacts.append(PersonContact(atSeconds: simulatedSeconds, person: index, speedMetresPerSecond: linear.velocity))
            }
            if touching { personInContact.insert(index) } else { personInContact.remove(index) }
        }
    }

    func stepFieldScanner() {
        if !people.isEmpty { checkContacts() }
        guard let scanner = settings.fieldScanner, settings.protocolMinor >= 1 else { return }
        let reachAhead = evaluateFields(scanner)
        // One stop at a time: from the detection, through the response time, to standstill.
        let awaitingStandstill = protectiveStops.last.map { $0.stoppingDistanceMetres == nil } ?? false
        let executing = !chassisSegments.isEmpty || linear.velocity != 0 || angular.velocity != 0
        if fieldProtectiveNow && executing && !awaitingStandstill {
            let faulted = scanner.faulted || scannerFaultForced
            protectiveStopDueSeconds = simulatedSeconds + (faulted ? 0 : scanner.responseSeconds)
            protectiveStopFrom = (trueX, trueY)
            protectiveStops.append(ProtectiveStopRecord(detectedAtSeconds: simulatedSeconds, speedMetresPerSecond: abs(linear.velocity),
                                                        fieldReachMetres: reachAhead))
        }
        if let due = protectiveStopDueSeconds, simulatedSeconds + 1e-9 >= due {
            protectiveStopDueSeconds = nil
            linear.acceleration = max(linear.acceleration, settings.chassisQuickStopMetresPerSecond2)
            angular.acceleration = max(angular.acceleration, settings.turnQuickStopDegreesPerSecond2 * .pi / 180)
            beginChassisStop()
            protectiveStopLatched = true
        }
        if protectiveStopDueSeconds == nil, linear.velocity == 0, angular.velocity == 0,
           let i = protectiveStops.indices.last, protectiveStops[i].stoppingDistanceMetres == nil {
            protectiveStops[i].stoppingDistanceMetres = hypot(trueX - protectiveStopFrom.x, trueY - protectiveStopFrom.y)
        }
    }

    /// H9.3, at an accepted set-point edge (after the set-point's segments are set up):
    /// the latch clears, and a set-point whose field is interrupted ends at once.
    func checkNewSetpointAgainstField() {
        protectiveStopLatched = false
        guard let scanner = settings.fieldScanner, settings.protocolMinor >= 1 else { return }
        evaluateFields(scanner)
        guard fieldProtectiveNow else { return }
        protectiveStopLatched = true
        beginChassisStop()
    }

    var fieldFlags: ChassisStatus.Flags {
        guard let scanner = settings.fieldScanner, settings.protocolMinor >= 1 else { return [] }
        var flags: ChassisStatus.Flags = []
        if fieldWarningNow { flags.insert(.fieldWarning) }
        if fieldProtectiveNow { flags.insert(.fieldProtective) }
        if protectiveStopLatched { flags.insert(.protectiveStop) }
        if scanner.faulted || scannerFaultForced { flags.insert(.fieldScannerFault) }
        return flags
    }
}
