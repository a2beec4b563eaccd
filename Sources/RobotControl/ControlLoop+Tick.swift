import FirmwareProtocol
import Foundation
import Histogram
import RobotIO
import Synchronization

/// The loop thread and one tick: read the newest blocks, serve the e-stop and halt
/// counters, take commands, supervise, advance drives, reset and measurement, publish.
extension ControlLoop {
    // MARK: The loop thread

    func run(thread: RealtimeThread) {
        let period = configuration.tickNanoseconds
        startedAtNanoseconds = MonotonicClock.nanoseconds()
        var next = startedAtNanoseconds + period
        while !stopRequested.load(ordering: .sequentiallyConsistent) {
            sleepUntil(nanoseconds: next)
            let woke = MonotonicClock.nanoseconds()
            tickObserver?(.begin)
            step(now: woke)
            tickObserver?(.end)
            let done = MonotonicClock.nanoseconds()
            shared.lock()
            _ = latency.record(woke > next ? (woke - next) / 1000 : 0)
            _ = tickDuration.record((done - woke) / 1000)
            shared.unlock()
            next += period
            if done > next {
                // Overran: skip the missed deadlines instead of running ticks back to back.
                let missed = (done - next) / period + 1
                next += missed * period
                shared.lock()
                overruns += missed
                unreportedOverruns += missed
                shared.unlock()
            }
        }
        // Last act: decelerate anything still moving.
        haltAxes()
    }

    /// One tick, on the loop thread.
    func step(now: UInt64) {
        tick &+= 1
        let safetyBlock = bus.latest(unit: RegisterMap.safety.unitId, block: SafetyStatus.spec)
        let chassisBlock = bus.latest(unit: RegisterMap.chassis.unitId, block: ChassisStatus.spec)
        let liftBlock = bus.latest(unit: RegisterMap.lift.unitId, block: LiftStatus.spec)
        let detectorBlock = bus.latest(unit: RegisterMap.detector.unitId, block: DetectorStatus.spec)
        let safety = safetyBlock.flatMap { try? SafetyStatus(registers: $0.registers) }
        let chassisStatus = chassisBlock.flatMap { try? ChassisStatus(registers: $0.registers) }
        let liftStatus = liftBlock.flatMap { try? LiftStatus(registers: $0.registers) }
        let detector = detectorBlock.flatMap { try? DetectorStatus(registers: $0.registers) }
        let inputs = Inputs(now: now, safety: safety, safetyBlock: safetyBlock, chassis: chassisStatus, chassisBlock: chassisBlock,
                            lift: liftStatus, liftBlock: liftBlock, detector: detector, detectorBlock: detectorBlock)

        watchFields(inputs)
        // A software e-stop first, before any queued command: it acts in this tick.
        let estopsRequested = estopRequests.load(ordering: .sequentiallyConsistent)
        if estopsRequested != estopRequestsServed {
            softwareEstopRequested = true
            trip(.softwareEstop, inputs)
            estopRequestsServed = estopsRequested
            estopServedAtTick = tick
            mailbox.completeUnqueuedEstops()
        }
        let haltsRequested = haltRequests.load(ordering: .sequentiallyConsistent)
        if haltsRequested != haltRequestsServed {
            overrideMotion(with: 0)
            haltRequestsServed = haltsRequested
            haltServedAtTick = tick
        }
        // Then commands, so a stop taken now acts in this same tick.
        var budget = 8
        while budget > 0, let entry = mailbox.take() {
            budget -= 1
            handle(entry, inputs)
        }
        supervise(inputs)
        trackPose(inputs)
        reassertHalt(inputs)
        advance(&chassis, status: inputs.chassisDrive, inputs)
        advance(&lift, status: inputs.liftDrive, inputs)
        advanceReset(inputs)
        advanceMeasurement(inputs)
        refreshWatchdog(now: now)
        publish(inputs)
    }

    // MARK: Inputs

    struct DriveInput {
        var state: DriveState
        var faultCode: UInt16
        var targetReached: Bool
        var moving: Bool
        var sampledAt: UInt64
        var available: Bool
    }

    struct Inputs {
        let now: UInt64
        let safety: SafetyStatus?
        let safetyBlock: PolledBlock?
        let chassis: ChassisStatus?
        let chassisBlock: PolledBlock?
        let lift: LiftStatus?
        let liftBlock: PolledBlock?
        let detector: DetectorStatus?
        let detectorBlock: PolledBlock?

        var chassisDrive: DriveInput? {
            guard let c = chassis, let b = chassisBlock else { return nil }
            return DriveInput(state: c.driveState, faultCode: c.faultCode, targetReached: c.flags.contains(.targetReached),
                              moving: c.flags.contains(.moving), sampledAt: b.sampledAtNanoseconds,
                              available: b.consecutiveFailures == 0)
        }

        var liftDrive: DriveInput? {
            guard let l = lift, let b = liftBlock else { return nil }
            let done = l.flags.contains(.targetReached) && !l.flags.contains(.moving)
            return DriveInput(state: l.driveState, faultCode: l.faultCode, targetReached: done,
                              moving: l.flags.contains(.moving), sampledAt: b.sampledAtNanoseconds,
                              available: b.consecutiveFailures == 0)
        }
    }
}
