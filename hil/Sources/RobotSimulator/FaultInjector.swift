import Foundation

/// Bus faults waiting for requests, plus random fault rates for soak runs.
public final class FaultInjector: @unchecked Sendable {
    private let lock = NSLock()
    private var queued: [(fault: BusFault, unit: UInt8?, requests: FaultedRequests)] = []
    private var linkDownUntil: UInt64 = 0
    private var random: SeededRandom
    /// Probability per request of each random fault (0 disables).
    public struct Rates: Sendable, Codable, Equatable {
        public var crcError = 0.0
        public var noReply = 0.0
        public var junkBytes = 0.0
        public var lateReply = 0.0
        public init() {}
    }
    private var rates = Rates()
    public private(set) var injectedCounts: [String: Int] = [:]

    public init(seed: UInt64 = 7) {
        random = SeededRandom(seed: seed)
    }

    /// Queues `fault` for the next request (to `unit`, if given, and of the kind `requests`
    /// names), `times` times.
    public func enqueue(_ fault: BusFault, unit: UInt8? = nil, times: Int = 1, requests: FaultedRequests = .any) {
        lock.lock()
        defer { lock.unlock() }
        for _ in 0..<max(1, times) { queued.append((fault, unit, requests)) }
    }

    public func setRates(_ newRates: Rates) {
        lock.lock()
        rates = newRates
        lock.unlock()
    }

    public func clear() {
        lock.lock()
        queued.removeAll()
        linkDownUntil = 0
        lock.unlock()
    }

    /// The fault to apply to a request to `unit` with `functionCode`, if any.
    func take(unit: UInt8, functionCode: UInt8) -> BusFault? {
        lock.lock()
        defer { lock.unlock() }
        let now = DispatchTime.now().uptimeNanoseconds
        if now < linkDownUntil { return count(.noReply, "linkDrop") }
        if let index = queued.firstIndex(where: {
            ($0.unit == nil || $0.unit == unit) && $0.requests.matches(functionCode: functionCode)
        }) {
            let fault = queued.remove(at: index).fault
            if case .linkDrop(let ms) = fault {
                linkDownUntil = now + UInt64(ms) * 1_000_000
                return count(.noReply, "linkDrop")
            }
            return count(fault, Self.name(fault))
        }
        let u = random.uniform()
        var edge = rates.crcError
        if u < edge { return count(.crcError, "crcError") }
        edge += rates.noReply
        if u < edge { return count(.noReply, "noReply") }
        edge += rates.junkBytes
        if u < edge { return count(.junkBytes(count: 6), "junkBytes") }
        edge += rates.lateReply
        if u < edge { return count(.lateReply(milliseconds: 150), "lateReply") }
        return nil
    }

    func randomBytes(_ n: Int) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    private func count(_ fault: BusFault, _ name: String) -> BusFault {
        injectedCounts[name, default: 0] += 1
        return fault
    }

    public func counts() -> [String: Int] {
        lock.lock()
        defer { lock.unlock() }
        return injectedCounts
    }

    static func name(_ fault: BusFault) -> String {
        switch fault {
        case .noReply: return "noReply"
        case .lateReply: return "lateReply"
        case .crcError: return "crcError"
        case .junkBytes: return "junkBytes"
        case .splitFrame: return "splitFrame"
        case .exception: return "exception"
        case .linkDrop: return "linkDrop"
        }
    }
}
