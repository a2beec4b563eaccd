import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import InspectionStore
import Logging
import NIOCore
import NIOHTTPTypes
import ServiceLifecycle
import Synchronization

/// Refusals of callers without a valid token, counted per source address and written to
/// the audit log as one entry per address and interval, instead of one entry per call:
/// an unauthenticated flood could otherwise fill the append-only log (and the disk) and
/// drown the entries that matter. Refusals of logged-in users are still audited one by one.
final class RefusalLog: Sendable {
    struct Tally {
        var count = 0
        var byAction: [String: Int] = [:]
    }

    private let tallies = Mutex<[String: Tally]>([:])
    /// Addresses tracked per interval; more are summed under "other addresses".
    static let maximumSources = 1000
    /// Audit entries per interval; the remaining addresses go into one summary entry.
    static let maximumEntries = 50
    let intervalSeconds: Double

    init(intervalSeconds: Double) {
        self.intervalSeconds = intervalSeconds
    }

    func count(source: String, action: String, code: String) {
        tallies.withLock { tallies in
            let key = tallies[source] != nil || tallies.count < Self.maximumSources ? source : "other addresses"
            var tally = tallies[key] ?? Tally()
            tally.count += 1
            let what = "\(action) \(code)"
            if tally.byAction[what] != nil || tally.byAction.count < 8 { tally.byAction[what, default: 0] += 1 }
            tallies[key] = tally
        }
    }

    /// Writes what was counted since the last flush and starts again. The writes run in a
    /// task of their own: GRDB's async writes give up in a cancelled task (a shutdown),
    /// and the counts taken out here would be lost.
    func flush(to store: ScanStore) async {
        await Task.detached { await self.write(to: store) }.value
    }

    private func write(to store: ScanStore) async {
        let taken = tallies.withLock { tallies -> [String: Tally] in
            let taken = tallies
            tallies = [:]
            return taken
        }
        guard !taken.isEmpty else { return }
        let sorted = taken.sorted { $0.value.count > $1.value.count }
        for (source, tally) in sorted.prefix(Self.maximumEntries) {
            let actions = tally.byAction.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            try? await store.recordAudit(actor: "anonymous", action: "refusals",
                                         detail: "from \(source): \(tally.count) refused without a valid token within \(Int(intervalSeconds)) s (\(actions))")
        }
        let rest = sorted.dropFirst(Self.maximumEntries)
        if !rest.isEmpty {
            try? await store.recordAudit(actor: "anonymous", action: "refusals",
                                         detail: "\(rest.reduce(0) { $0 + $1.value.count }) more refused from \(rest.count) other addresses")
        }
    }
}

/// Flushes the refusal counts into the audit log every interval, and once more at the end.
struct RefusalLogService: Service {
    let log: RefusalLog
    let store: ScanStore

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(log.intervalSeconds * 1e9))
                if Task.isCancelled { break }
                await log.flush(to: store)
            }
        }
        // The last counts, at shutdown.
        await log.flush(to: store)
    }
}

/// Closes a connection whose first request head does not arrive within a deadline:
/// slow clients that trickle header bytes would otherwise hold sockets for ever (an idle
/// timeout is reset by every byte). Sits at the front of the pipeline, before the HTTP
/// decoder (after TLS), so it sees the bytes before a request is recognised at all; once
/// the head's blank line has arrived it leaves the pipeline, and `RequestDeadline` and
/// the idle timeout take over for later requests.
final class HeadDeadline: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let seconds: Double
    private let counters: ConnectionCounters
    private var deadline: Scheduled<Void>?
    /// The last three bytes seen, to find "\r\n\r\n" across reads.
    private var tail: [UInt8] = []

    init(seconds: Double, counters: ConnectionCounters) {
        self.seconds = seconds
        self.counters = counters
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counters.open.add(1, ordering: .relaxed)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let counters = self.counters
        deadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            counters.timedOut.add(1, ordering: .relaxed)
            loopBound.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        counters.open.subtract(1, ordering: .relaxed)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        var complete = false
        if let bytes = buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) {
            var window = tail
            for byte in bytes {
                window.append(byte)
                if window.count > 4 { window.removeFirst() }
                if window == [13, 10, 13, 10] { complete = true; break }
            }
            tail = window.count > 3 ? Array(window.suffix(3)) : window
        }
        context.fireChannelRead(data)
        if complete {
            deadline?.cancel()
            deadline = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// Counts of the connection guards, for tests and metrics.
final class ConnectionCounters: Sendable {
    /// Connections still waiting for their first request head.
    let open = Atomic<Int>(0)
    /// Connections closed for not sending a request in time.
    let timedOut = Atomic<Int>(0)
}

/// The server's HTTP/1 + WebSocket channel with `HeadDeadline` in front.
struct GuardedHTTPChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value
    let inner: HTTP1WebSocketUpgradeChannel
    let headDeadlineSeconds: Double
    let counters: ConnectionCounters

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(HeadDeadline(seconds: headDeadlineSeconds, counters: counters))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Later requests on a kept-alive connection: each must arrive whole (head to end)
/// within the deadline. Added after the HTTP decoder of a connection that was not
/// upgraded to a WebSocket.
final class RequestDeadline: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let seconds: Double
    private let counters: ConnectionCounters
    private var deadline: Scheduled<Void>?

    init(seconds: Double, counters: ConnectionCounters) {
        self.seconds = seconds
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let counters = self.counters
            deadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
                counters.timedOut.add(1, ordering: .relaxed)
                loopBound.value.close(promise: nil)
            }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }
}
