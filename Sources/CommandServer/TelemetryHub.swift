import Foundation
import RobotAPI
import RobotControl
import Synchronization

/// Builds one telemetry frame per period and hands the same encoded text to every
/// WebSocket client, so 100 clients cost one encode per frame. A slow client drops
/// frames (its buffer keeps the newest few) rather than holding anyone up. Command
/// feedback for commands sent through the API goes out as it changes.
final class TelemetryHub: Sendable {
    struct Subscribers {
        var next = 0
        var continuations: [Int: AsyncStream<String>.Continuation] = [:]
        /// API commands not final yet, with the state last sent.
        var watched: [UInt64: CommandState] = [:]
    }

    let periodSeconds: Double
    let subscribers = Mutex(Subscribers())
    let frame: @Sendable () -> TelemetryFrame
    let loop: ControlLoop
    let framesSent = Atomic<UInt64>(0)

    init(rateHertz: Double, loop: ControlLoop, frame: @escaping @Sendable () -> TelemetryFrame) {
        periodSeconds = 1 / rateHertz
        self.loop = loop
        self.frame = frame
    }

    var clientCount: Int { subscribers.withLock { $0.continuations.count } }

    /// API commands whose feedback is still followed (not final yet).
    var watchedCount: Int { subscribers.withLock { $0.watched.count } }

    func subscribe() -> (id: Int, stream: AsyncStream<String>) {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(8))
        let id = subscribers.withLock { s -> Int in
            s.next += 1
            s.continuations[s.next] = continuation
            return s.next
        }
        return (id, stream)
    }

    func unsubscribe(_ id: Int) {
        subscribers.withLock { $0.continuations.removeValue(forKey: id) }?.finish()
    }

    /// Sends this command's feedback to clients as its state changes.
    func watch(_ id: UInt64) {
        subscribers.withLock { $0.watched[id] = .accepted }
    }

    func broadcast(_ text: String) {
        let targets = subscribers.withLock { Array($0.continuations.values) }
        for c in targets { c.yield(text) }
    }

    /// Runs until cancelled.
    func run() async {
        let clock = ContinuousClock()
        var deadline = clock.now
        let period = Duration.nanoseconds(Int64(periodSeconds * 1e9))
        while !Task.isCancelled {
            deadline += period
            // Feedback is followed with or without listeners, so that finished commands
            // are forgotten even when nobody has a WebSocket open.
            let events = commandEvents()
            if clientCount > 0 {
                for event in events { broadcast(event) }
                if let text = Self.encode(TelemetryMessage(data: frame())) {
                    broadcast(text)
                    framesSent.add(1, ordering: .relaxed)
                }
            }
            if deadline < clock.now { deadline = clock.now }
            try? await Task.sleep(until: deadline, clock: clock)
        }
        let all = subscribers.withLock { s -> [AsyncStream<String>.Continuation] in
            defer { s.continuations = [:] }
            return Array(s.continuations.values)
        }
        for c in all { c.finish() }
    }

    private func commandEvents() -> [String] {
        let watched = subscribers.withLock { $0.watched }
        var events: [String] = []
        var changes: [UInt64: CommandState?] = [:]
        for (id, last) in watched {
            guard let f = loop.feedback(id) else { changes[id] = .some(nil); continue }
            if f.state != last {
                changes[id] = f.state.isFinal ? .some(nil) : f.state
                if let body = JSONValue(encoding: CommandStatus(f)), let text = Self.encode(["type": .string("command"), "data": body]) {
                    events.append(text)
                }
            }
        }
        if !changes.isEmpty {
            subscribers.withLock { s in
                for (id, state) in changes { s.watched[id] = state }
            }
        }
        return events
    }

    /// `{"type": "telemetry", "data": frame}`.
    struct TelemetryMessage: Encodable {
        let type = "telemetry"
        let data: TelemetryFrame
    }

    static func encode<T: Encodable>(_ value: T) -> String? {
        (try? JSONCoding.encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }
}
