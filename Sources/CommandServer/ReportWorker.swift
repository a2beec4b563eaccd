import Dispatch
import Synchronization

/// Verdicts, reports and heat-map data: computed one at a time on a thread of their own,
/// not on Swift's cooperative pool.
///
/// Each reads every reading of a scan from the store (GRDB's blocking reads) and runs
/// statistics over them: tens of milliseconds of CPU late in a 300-point scan. On the
/// cooperative pool (two threads on a two-core robot computer) a burst of them held the
/// threads an e-stop request needed: under `ServerBench --scan` with eight clients
/// computing verdicts, HTTP e-stop to firmware took 217 ms at p99. Here they queue behind
/// each other instead, using at most one core, and past `maxWaiting` a request is refused
/// (503 `busy`, Retry-After 1) rather than queued without end.
final class ReportWorker: Sendable {
    private let queue = DispatchQueue(label: "robotd.report-worker", qos: .utility)
    private let waiting = Atomic<Int>(0)
    let maxWaiting: Int

    init(maxWaiting: Int = 32) {
        self.maxWaiting = maxWaiting
    }

    /// Runs `work` on the worker's thread and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws(APIError) -> T) async throws(APIError) -> T {
        let queued = waiting.add(1, ordering: .relaxed).newValue
        defer { waiting.subtract(1, ordering: .relaxed) }
        guard queued <= maxWaiting else {
            var busy = APIError(.serviceUnavailable, "busy",
                                "\(queued - 1) verdict and report requests are already waiting (at most \(maxWaiting)); try again in a second")
            busy.headers[.retryAfter] = "1"
            throw busy
        }
        let result: Result<T, APIError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Result { () throws(APIError) -> T in try work() })
            }
        }
        return try result.get()
    }
}
