import CommandClient
import CommandServer
import Foundation
import InspectionStore
import RobotTesting
import Testing

/// The server against hostile or careless clients: floods of log-ins with junk names,
/// guessing, tokens in URLs, slow and surplus connections, a full disk, a user whose
/// password changes while connected, and a lease returned in the middle of motion.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct HostileClientTests {
    /// Raw TCP to the server, for clients that do not speak HTTP properly.
    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    /// True once the server has closed the socket (a read returns end of file or an error).
    static func closedByServer(_ fd: Int32, within seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while Date() < deadline {
            if poll(&poller, 1, 50) > 0 {
                var byte: UInt8 = 0
                if recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) <= 0 { return true }
            }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return false
    }

    @Test func aFloodOfJunkNamesNeitherLocksAnOfficerOutNorFillsTheAudit() async throws {
        let rig = try await ServerRig { $0.refusalLogIntervalSeconds = 1 }
        let started = Date()
        let before = try rig.store.auditEntries(limit: 10_000)
        let attacker = CommandClient(baseURL: rig.baseURL)
        let huge = String(repeating: "x", count: 200_000)
        // One character of 3 KB, under the 4 KiB log-in body cap: a cap in characters would keep it whole.
        let combining = "a" + String(repeating: "\u{0301}", count: 1_500)
        var statuses: [Int: Int] = [:]
        for i in 0..<300 {
            let name = i % 3 == 0 ? huge : (i % 3 == 1 ? combining : "nobody\(i)")
            statuses[try await attacker.logIn(name: name, password: "guess \(i)").status, default: 0] += 1
        }
        // 413 for the bodies over the log-in's 4 KiB cap, 401 (or 429, slowed down) for the rest.
        #expect(statuses[200] == nil && statuses.keys.allSatisfy { [401, 413, 429].contains($0) }, "\(statuses)")
        #expect(statuses[413] == 100 && (statuses[401] ?? 0) + (statuses[429] ?? 0) == 200, "\(statuses)")
        // The real officer, from the same address, is not locked out by names that are no account.
        let otto = CommandClient(baseURL: rig.baseURL)
        #expect(try await otto.logIn(name: "otto", password: ServerRig.password).status == 200)
        try await Task.sleep(nanoseconds: 1_300_000_000)
        let after = try rig.store.auditEntries(limit: 10_000)
        let added = after.dropFirst(before.count)
        let intervals = Int(Date().timeIntervalSince(started)) + 1
        // One "refusals" entry per address and interval, not one per attempt; nothing stored verbatim.
        #expect(added.filter { $0.action == "refusals" }.count <= intervals, "\(added.count) audit entries in \(intervals) s")
        #expect(added.filter { $0.action != "refusals" }.count == 1, "only otto's log-in: \(added.map(\.action))")
        #expect(!after.contains { $0.actor.utf8.count > 64 || $0.detail.utf8.count > 1024 || $0.detail.contains("xxxxxxxxxx") })
        #expect(after.contains { $0.action == "refusals" && $0.detail.contains("POST /api/v1/login 401 bad_credentials") })
    }

    @Test func guessingLocksOnlyThatAccountFromThatAddress() async throws {
        let rig = try await ServerRig()
        let guesser = CommandClient(baseURL: rig.baseURL)
        var statuses: [Int] = []
        for i in 0..<7 { statuses.append(try await guesser.logIn(name: "otto", password: "guess number \(i)").status) }
        #expect(statuses.prefix(5).allSatisfy { $0 == 401 } && statuses.suffix(2).allSatisfy { $0 == 429 }, "\(statuses)")
        // Another account from the same address logs in; otto's lock names the address.
        #expect(try await guesser.logIn(name: "olga", password: ServerRig.password).status == 200)
        let locked = try await guesser.logIn(name: "otto", password: ServerRig.password)
        #expect(locked.status == 429 && locked.errorMessage?.contains("127.0.0.1") == true, "\(locked.text)")
        #expect(try rig.store.auditEntries(limit: 100).contains { $0.actor == "otto" && $0.detail.contains("bad_credentials from 127.0.0.1") })
    }

    @Test func noTokenInAURLAndWebSocketTicketsAreGoodOnce() async throws {
        let rig = try await ServerRig()
        let vera = try await rig.client("vera")
        let token = try #require(vera.token)
        let inQuery = try await CommandClient(baseURL: rig.baseURL).send("GET", "/api/v1/state?access_token=\(token)")
        #expect(inQuery.status == 401, "a token in the query is not taken")
        let issued = try await vera.send("POST", "/api/v1/tickets", json: ["path": "/api/v1/ws"])
        let ticket = try #require(issued.object["ticket"] as? String)
        #expect(try await vera.send("POST", "/api/v1/tickets", json: ["path": "/api/v1/users"]).status == 422)
        // A ticket is not a token for anything else, and a WebSocket takes it once.
        #expect(try await CommandClient(baseURL: rig.baseURL).send("GET", "/api/v1/state?ticket=\(ticket)").status == 401)
        let frames = Counter()
        let watcher = Task { try await vera.watch { _ in frames.add(); return frames.value < 3 } }
        _ = try? await watcher.value
        #expect(frames.value >= 3, "telemetry through a ticket")
        // The ticket is spent by its first use (here a GET that is no upgrade), then refused.
        let first = try await CommandClient(baseURL: rig.baseURL).send("GET", "/api/v1/ws?ticket=\(ticket)", token: .some(nil))
        #expect(first.status == 400 && first.errorCode == "not_websocket", "\(first.status) \(first.text)")
        let again = try await CommandClient(baseURL: rig.baseURL).send("GET", "/api/v1/ws?ticket=\(ticket)", token: .some(nil))
        #expect(again.status == 401, "a ticket is good once: \(again.status)")
    }

    @Test func aPasswordChangeEndsTheSessionsAndClosesTheWebSocket() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        let sam = try await rig.client("sam")
        let closed = Counter()
        let watcher = Task {
            try? await otto.watch { _ in !Task.isCancelled }
            closed.add()
        }
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(try await sam.send("PATCH", "/api/v1/users/otto", json: ["password": "a brand new password"]).status == 200)
        #expect(await rig.waitFor(3) { closed.value == 1 }, "the WebSocket closed")
        #expect(try await otto.send("GET", "/api/v1/state").status == 401)
        watcher.cancel()
    }

    @Test func slowAndSurplusConnectionsAreClosed() async throws {
        let rig = try await ServerRig { $0.requestDeadlineSeconds = 1; $0.maximumConnections = 16 }
        // A head trickled in more slowly than the deadline allows.
        let slow = try Self.connect(rig.port)
        defer { close(slow) }
        _ = "GET /api/v1/health HTTP/1.1\r\nHost: x\r\n".withCString { send(slow, $0, strlen($0), 0) }
        let started = Date()
        var closed = false
        while !closed && Date().timeIntervalSince(started) < 5 {
            _ = "X".withCString { send(slow, $0, 1, Int32(MSG_NOSIGNAL)) }
            closed = await Self.closedByServer(slow, within: 0.3)
        }
        #expect(closed, "the slow client was closed")
        #expect(Date().timeIntervalSince(started) < 3, "within the 1 s deadline (plus polling)")
        #expect(rig.server.slowConnectionsClosed >= 1)
        // At the cap the server stops accepting (new connections wait in the backlog); the
        // idle ones are closed by the deadline, and the API answers again.
        var sockets: [Int32] = []
        for _ in 0..<24 { sockets.append(try Self.connect(rig.port)) }
        defer { sockets.forEach { close($0) } }
        let vera = CommandClient(baseURL: rig.baseURL)
        let asked = Date()
        let health = try await vera.send("GET", "/api/v1/health", timeout: 10)
        #expect(health.status == 200)
        #expect(Date().timeIntervalSince(asked) < 4, "answered once the deadline freed the slots")
    }

    @Test func webSocketsAreCappedPerUser() async throws {
        let rig = try await ServerRig { $0.maximumWebSocketsPerUser = 2 }
        let vera = try await rig.client("vera")
        let open = Counter()
        let watchers = (0..<2).map { _ in
            Task {
                let first = Counter()
                try? await vera.watch { _ in
                    if first.value == 0 { first.add(); open.add() }
                    return !Task.isCancelled
                }
            }
        }
        defer { watchers.forEach { $0.cancel() } }
        #expect(await rig.waitFor(5) { open.value >= 2 })
        let issued = try await vera.send("POST", "/api/v1/tickets", json: ["path": "/api/v1/ws"])
        let ticket = try #require(issued.object["ticket"] as? String)
        let third = try await CommandClient(baseURL: rig.baseURL).send(
            "GET", "/api/v1/ws?ticket=\(ticket)", token: .some(nil))
        // A plain GET is not an upgrade, but the cap is checked first and says so.
        #expect(third.status == 429 && third.errorCode == "too_many_websockets", "\(third.status) \(third.text)")
    }

    @Test func aFullDiskRefusesNewScansWithTheNumbers() async throws {
        let rig = try await ServerRig { $0.minimumFreeDiskBytes = Int64.max / 2 }
        let otto = try await rig.client("otto")
        let planned = try await otto.send("POST", "/api/v1/scans", json: ["containerNumber": "CSQU3054383", "size": "22G1"])
        let id = try #require(planned.object["id"] as? String)
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let refused = try await otto.send("POST", "/api/v1/scans/\(id)/start")
        #expect(refused.status == 507 && refused.errorCode == "disk_full", "\(refused.text)")
        #expect(refused.errorMessage?.contains("MiB free") == true)
        // And the alarm: in telemetry (the phone shows a banner), the audit log and /metrics.
        let store = try await otto.state().store
        #expect(store.diskLow, "\(store)")
        #expect(try rig.store.auditEntries(limit: 50).contains { $0.action == "disk.low" })
        #expect(try await otto.send("GET", "/metrics").text.contains("robotd_store_disk_free_bytes"))
    }

    @Test func returningTheLeaseDuringMotionStopsItFirst() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }
        #expect(try await otto.command(["type": "walk", "metres": 6.0]).status == 202)
        #expect(await rig.waitFor(5) { rig.loop.snapshot().speedMetresPerSecond > 0.2 })
        #expect(try await otto.send("DELETE", "/api/v1/lease").status == 200)
        keepAlive.cancel()
        // Without the lease nothing supervises the motion: it was halted before the return.
        #expect(await rig.waitFor(3) { abs(rig.simulator.model.truth().speedMetresPerSecond) < 0.001 })
        #expect(!rig.loop.snapshot().deadmanArmed)
    }

    @Test func plainHTTPBeyondLoopbackIsRefusedUnlessAllowed() {
        var configuration = ServerConfiguration()
        configuration.host = "0.0.0.0"
        #expect(configuration.problems().contains { $0.contains("in clear") && $0.contains("allowPlaintext") })
        configuration.allowPlaintext = true
        #expect(configuration.problems().isEmpty)
        configuration.allowPlaintext = false
        configuration.tlsCertificatePath = "cert.pem"
        configuration.tlsKeyPath = "key.pem"
        #expect(configuration.problems().isEmpty)
    }
}

/// A thread-safe count for callbacks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
