import Foundation
import RobotControl
import Synchronization

/// The motion lease, after Spot's: one client at a time may move the robot. The holder
/// retains it by keep-alives; the control loop's deadman stops the robot when they stop
/// (after `ControlConfiguration.deadmanTimeoutSeconds`), and the lease is then stale:
/// anyone may acquire it. A supervisor may take it over at any time.
public final class MotionLease: Sendable {
    public struct Holder: Sendable, Equatable, Codable {
        public var leaseId: String
        public var user: String
        public var client: String
        public var since: Date
        public var lastKeepAlive: Date
    }

    public struct Status: Sendable, Equatable, Codable {
        public var held: Bool
        public var user: String?
        public var client: String?
        public var since: Date?
        public var stale: Bool
        public var timeoutSeconds: Double
    }

    let loop: ControlLoop
    let holder = Mutex<Holder?>(nil)
    /// While an automated scan runs, the holder's keep-alives may lapse this long (the
    /// phone's Wi-Fi gone) before the lease is stale: the scan supervises itself meanwhile
    /// (`CommsSupervisor`). Zero when no scan runs.
    let scanGraceSeconds = Mutex<Double>(0)

    public init(loop: ControlLoop) {
        self.loop = loop
    }

    public var timeoutSeconds: Double { max(loop.configuration.deadmanTimeoutSeconds, scanGraceSeconds.withLock { $0 }) }

    func isStale(_ h: Holder, now: Date) -> Bool {
        now.timeIntervalSince(h.lastKeepAlive) > timeoutSeconds
    }

    /// Seconds since the holder's last keep-alive (nil without a holder).
    func silentSeconds(now: Date = Date()) -> Double? {
        holder.withLock { $0.map { now.timeIntervalSince($0.lastKeepAlive) } }
    }

    /// The current lease id and holder.
    var current: Holder? { holder.withLock { $0 } }

    public func status(now: Date = Date()) -> Status {
        let h = holder.withLock { $0 }
        return Status(held: h != nil, user: h?.user, client: h?.client, since: h?.since, stale: h.map { isStale($0, now: now) } ?? false,
                      timeoutSeconds: timeoutSeconds)
    }

    static func describe(_ h: Holder) -> String { "'\(h.user)' (\(h.client))" }

    /// Acquires a free or stale lease, or renews the caller's own.
    public func acquire(user: String, client: String, now: Date = Date()) throws(APIError) -> Holder {
        let result: Result<Holder, APIError> = holder.withLock { current in
            if let h = current, h.user != user || h.client != client, !isStale(h, now: now) {
                return .failure(.conflict("lease_held", "the motion lease is held by \(Self.describe(h)) since \(Self.time(h.since)); "
                    + "ask them to return it, wait until it goes stale, or have a supervisor take it over"))
            }
            let fresh = Holder(leaseId: UUID().uuidString.lowercased(), user: user, client: client, since: now, lastKeepAlive: now)
            current = fresh
            return .success(fresh)
        }
        let granted = try result.get()
        loop.armDeadman(true)
        return granted
    }

    /// A supervisor takes the lease whoever holds it. Returns the new holder and the one it replaced.
    public func takeOver(user: String, client: String, now: Date = Date()) -> (Holder, previous: Holder?) {
        let (fresh, previous) = holder.withLock { current -> (Holder, Holder?) in
            let previous = current
            let fresh = Holder(leaseId: UUID().uuidString.lowercased(), user: user, client: client, since: now, lastKeepAlive: now)
            current = fresh
            return (fresh, previous)
        }
        loop.armDeadman(true)
        return (fresh, previous)
    }

    /// Checks that `leaseId` is the current, live lease and that `user` holds it.
    public func check(_ leaseId: String?, user: String, now: Date = Date()) throws(APIError) {
        let h = holder.withLock { $0 }
        guard let h else {
            throw .conflict("lease_required", "motion needs the motion lease and nobody holds it; acquire it with POST /api/v1/lease")
        }
        guard let leaseId, !leaseId.isEmpty else {
            throw .conflict("lease_required", "motion needs the motion lease (send it in the X-Lease header); it is held by \(Self.describe(h))")
        }
        // The id alone is not enough: another user's token with a copied id is refused too.
        guard h.leaseId == leaseId, h.user == user else {
            throw .conflict("lease_held", "the motion lease is held by \(Self.describe(h)); yours is no longer valid")
        }
        if isStale(h, now: now) {
            throw .conflict("lease_stale", String(format: "your lease went stale (no keep-alive for %.1f s, limit %.1f s) and the robot stopped; "
                + "acquire it again and reset", now.timeIntervalSince(h.lastKeepAlive), timeoutSeconds))
        }
    }

    /// Retains the lease: refreshes the loop's deadman.
    public func keepAlive(_ leaseId: String?, user: String, now: Date = Date()) throws(APIError) {
        try check(leaseId, user: user, now: now)
        holder.withLock { $0?.lastKeepAlive = now }
        loop.keepAlive()
    }

    /// Returns the lease; the deadman is disarmed.
    public func release(_ leaseId: String?, user: String) throws(APIError) -> Holder {
        let result: Result<Holder, APIError> = holder.withLock { current in
            guard let h = current else { return .failure(.conflict("lease_not_held", "nobody holds the motion lease")) }
            guard h.leaseId == leaseId, h.user == user else {
                return .failure(.conflict("lease_held", "the motion lease is held by \(Self.describe(h)); only its holder can return it"))
            }
            current = nil
            return .success(h)
        }
        let returned = try result.get()
        loop.armDeadman(false)
        return returned
    }

    static func time(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
