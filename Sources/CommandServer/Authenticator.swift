import Crypto
import Dispatch
import Foundation
import InspectionStore
import Synchronization

/// Log-in and tokens. Tokens are random 256-bit values held only in memory (as their
/// SHA-256), so a restart logs everyone out.
///
/// The log-in throttle is written so that an attacker cannot lock an officer out:
/// - failures count per (source address, account), and only for accounts that exist:
///   after `maxFailures` inside `failureWindowSeconds` that address is refused for that
///   account for `lockoutSeconds`, even with the right password; the officer's own
///   phone, at another address, is not affected;
/// - a name that is not an account (or not a valid user name at all) is refused at once,
///   without a password check, a database read or a lock-out: such attempts are only
///   counted per address, and an address past `unknownNamesPerMinute` of them is told to
///   slow down (429) for unknown names only; a real account from the same address still
///   logs in;
/// - every map is bounded (`maximumTrackedEntries`) and pruned of expired entries.
///
/// Accounts are cached in memory (a change through the API takes effect at once, and the
/// cache is re-read from the store after `accountCacheSeconds` for changes made with
/// `robotctl user add`), so no request but a log-in waits on SQLite; the password check
/// (scrypt) and the store reads run on a thread of their own, off Swift's cooperative pool.
public final class Authenticator: Sendable {
    public struct Session: Sendable, Equatable {
        public let user: String
        public let role: Role
        public let expiresAt: Date
        /// A short, non-secret handle for logs (the first 8 hex digits of the token's hash).
        public let handle: String
    }

    struct Issued {
        var user: String
        var at: Date
        var expiresAt: Date
        /// Logged out, or ended by a password or role change or the account's removal: no
        /// longer good for anything but the e-stop.
        var ended = false
    }

    struct Account {
        var role: Role
        var credential: String
        var loadedAt: Date
    }

    struct Throttle {
        var failures: [Date] = []
        var lockedUntil: Date?
    }

    struct State {
        var tokens: [String: Issued] = [:]
        var accounts: [String: Account] = [:]
        var throttles: [String: Throttle] = [:]
        var unknownNames: [String: (windowStart: Date, count: Int)] = [:]
    }

    let store: ScanStore
    let tokenLifetimeSeconds: Double
    let maxFailures: Int
    let failureWindowSeconds: Double
    let lockoutSeconds: Double
    let unknownNamesPerMinute: Int
    let state = Mutex(State())
    /// Log-ins (store reads, scrypt) run here, one at a time, never on the cooperative pool.
    let worker = DispatchQueue(label: "robotd.authenticator")
    let waiting = Atomic<Int>(0)

    /// How long a token this process issued keeps the authority to press the e-stop.
    public static let stopAuthoritySeconds: Double = 86_400
    public static let maximumTrackedEntries = 10_000
    static let accountCacheSeconds: Double = 60
    /// Log-ins allowed to wait for the worker before the server answers 503.
    static let maximumWaiting = 64

    public init(store: ScanStore, tokenLifetimeSeconds: Double, maxFailures: Int = 5, failureWindowSeconds: Double = 60,
                lockoutSeconds: Double = 60, unknownNamesPerMinute: Int = 600) {
        self.store = store
        self.tokenLifetimeSeconds = tokenLifetimeSeconds
        self.maxFailures = maxFailures
        self.failureWindowSeconds = failureWindowSeconds
        self.lockoutSeconds = lockoutSeconds
        self.unknownNamesPerMinute = unknownNamesPerMinute
    }

    /// How a log-in was refused, for the audit: a real account's failure is recorded
    /// under its name; anything else is only counted per address.
    public enum RefusedName: Sendable {
        case account(String)
        case notAnAccount
    }

    /// Checks a password and issues a token. Every refusal says the same about names and
    /// passwords, so it does not tell which one was wrong.
    public func logIn(name: String, password: String, source: String, now: Date = Date()) async throws(LoginRefusal) -> (token: String, session: Session) {
        guard Self.isValidUserName(name) else {
            try countUnknownName(source: source, now: now)
            throw LoginRefusal(error: APIError(.unauthorized, "bad_credentials", "unknown user or wrong password"), name: .notAnAccount)
        }
        let key = "\(source)|\(name)"
        if let until = state.withLock({ $0.throttles[key]?.lockedUntil }), until > now {
            let seconds = Int(until.timeIntervalSince(now).rounded(.up))
            var error = APIError(.tooManyRequests, "rate_limited",
                                 "too many failed log-ins for '\(name)' from \(source); try again in \(seconds) s")
            error.headers[.retryAfter] = "\(seconds)"
            throw LoginRefusal(error: error, name: .account(name))
        }
        let checked: (account: Account?, passwordOK: Bool)
        do {
            checked = try await onWorker { () throws(APIError) -> (Account?, Bool) in
                guard let account = try self.account(named: name, now: now) else { return (nil, false) }
                return (account, PasswordHasher.verify(password, against: account.credential))
            }
        } catch {
            throw LoginRefusal(error: error, name: .notAnAccount)
        }
        guard let account = checked.account else {
            try countUnknownName(source: source, now: now)
            throw LoginRefusal(error: APIError(.unauthorized, "bad_credentials", "unknown user or wrong password"), name: .notAnAccount)
        }
        guard checked.passwordOK else {
            recordFailure(key, now: now)
            throw LoginRefusal(error: APIError(.unauthorized, "bad_credentials", "unknown user or wrong password"), name: .account(name))
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let tokenKey = Self.key(token)
        let session = Session(user: name, role: account.role, expiresAt: now.addingTimeInterval(tokenLifetimeSeconds), handle: String(tokenKey.prefix(8)))
        state.withLock {
            $0.throttles[key] = nil
            // Tokens are kept a day: refused as expired rather than unknown, and good for the e-stop.
            $0.tokens = $0.tokens.filter { now.timeIntervalSince($0.value.at) < Self.stopAuthoritySeconds }
            $0.tokens[tokenKey] = Issued(user: name, at: now, expiresAt: session.expiresAt)
        }
        return (token, session)
    }

    /// A refused log-in: the answer, and whose failure it was.
    public struct LoginRefusal: Error, Sendable {
        public let error: APIError
        public let name: RefusedName
    }

    /// 1 to 32 letters, digits, '-', '_' or '.': the rule every account name follows.
    public static func isValidUserName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 32 && name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E
        }
    }

    private func countUnknownName(source: String, now: Date) throws(LoginRefusal) {
        let over: Bool = state.withLock {
            Self.prune(&$0, now: now, failureWindow: failureWindowSeconds)
            var entry = $0.unknownNames[source] ?? (now, 0)
            if now.timeIntervalSince(entry.windowStart) >= 60 { entry = (now, 0) }
            entry.count += 1
            $0.unknownNames[source] = entry
            return entry.count > unknownNamesPerMinute
        }
        if over {
            var error = APIError(.tooManyRequests, "rate_limited", "too many log-ins with unknown names from \(source); slow down")
            error.headers[.retryAfter] = "60"
            throw LoginRefusal(error: error, name: .notAnAccount)
        }
    }

    private func recordFailure(_ key: String, now: Date) {
        state.withLock {
            Self.prune(&$0, now: now, failureWindow: failureWindowSeconds)
            var throttle = $0.throttles[key] ?? Throttle()
            throttle.failures = throttle.failures.filter { now.timeIntervalSince($0) < failureWindowSeconds }
            throttle.failures.append(now)
            if throttle.failures.count >= maxFailures {
                throttle.lockedUntil = now.addingTimeInterval(lockoutSeconds)
                throttle.failures = []
            }
            $0.throttles[key] = throttle
        }
    }

    /// Drops expired entries once a map is full; if it is still full, the oldest go.
    static func prune(_ s: inout State, now: Date, failureWindow: Double) {
        if s.throttles.count >= maximumTrackedEntries {
            s.throttles = s.throttles.filter { entry in
                (entry.value.lockedUntil.map { $0 > now } ?? false) || entry.value.failures.contains { now.timeIntervalSince($0) < failureWindow }
            }
            if s.throttles.count >= maximumTrackedEntries {
                let oldest = s.throttles.sorted { ($0.value.failures.last ?? .distantPast) < ($1.value.failures.last ?? .distantPast) }
                for entry in oldest.prefix(s.throttles.count - maximumTrackedEntries / 2) { s.throttles[entry.key] = nil }
            }
        }
        if s.unknownNames.count >= maximumTrackedEntries {
            s.unknownNames = s.unknownNames.filter { now.timeIntervalSince($0.value.windowStart) < 60 }
            if s.unknownNames.count >= maximumTrackedEntries {
                let oldest = s.unknownNames.sorted { $0.value.windowStart < $1.value.windowStart }
                for entry in oldest.prefix(s.unknownNames.count - maximumTrackedEntries / 2) { s.unknownNames[entry.key] = nil }
            }
        }
    }

    /// The account behind a name: from the cache, or (on the worker) from the store.
    private func account(named name: String, now: Date) throws(APIError) -> Account? {
        if let cached = state.withLock({ $0.accounts[name] }), now.timeIntervalSince(cached.loadedAt) < Self.accountCacheSeconds {
            return cached
        }
        let stored: ScanStore.UserAccount?
        do {
            stored = try store.user(named: name)
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the user store could not be read (\(error)); try again")
        }
        guard let stored else {
            _ = state.withLock { $0.accounts.removeValue(forKey: name) }
            return nil
        }
        let account = Account(role: stored.role, credential: stored.credential, loadedAt: now)
        state.withLock { $0.accounts[name] = account }
        return account
    }

    private func onWorker<T: Sendable>(_ body: @escaping @Sendable () throws(APIError) -> T) async throws(APIError) -> T {
        guard waiting.add(1, ordering: .relaxed).newValue <= Self.maximumWaiting else {
            waiting.subtract(1, ordering: .relaxed)
            var error = APIError(.serviceUnavailable, "busy", "too many log-ins at once; try again in a second")
            error.headers[.retryAfter] = "1"
            throw error
        }
        let result: Result<T, APIError> = await withCheckedContinuation { continuation in
            worker.async {
                let outcome: Result<T, APIError>
                do throws(APIError) { outcome = .success(try body()) } catch { outcome = .failure(error) }
                continuation.resume(returning: outcome)
            }
        }
        waiting.subtract(1, ordering: .relaxed)
        return try result.get()
    }

    /// The session behind a bearer token. Reads the account from the cache; a role changed
    /// or an account removed through the API takes effect at once.
    public func session(for token: String?, now: Date = Date()) throws(APIError) -> Session {
        guard let token, !token.isEmpty else { throw .noToken }
        let key = Self.key(token)
        guard let issued = state.withLock({ $0.tokens[key] }) else { throw .badToken }
        guard !issued.ended else { throw .badToken }
        guard issued.expiresAt > now else { throw .expiredToken }
        guard let account = try account(named: issued.user, now: now) else { throw .badToken }
        return Session(user: issued.user, role: account.role, expiresAt: issued.expiresAt, handle: String(key.prefix(8)))
    }

    /// True while the token is still good for its holder's role (the WebSocket checks this
    /// every second and closes when it is not).
    public func isLive(_ token: String, now: Date = Date()) -> Bool {
        guard let issued = state.withLock({ $0.tokens[Self.key(token)] }) else { return false }
        return !issued.ended && issued.expiresAt > now && state.withLock({ $0.accounts[issued.user] }) != nil
    }

    /// Who may press the e-stop: the holder of any token this process issued in the last
    /// `stopAuthoritySeconds`, even if it has expired, was logged out, or its user was
    /// removed or demoted since. Needs no SQLite, so a store fault cannot block a stop.
    public func stopAuthority(for token: String?, now: Date = Date()) throws(APIError) -> Session {
        guard let token, !token.isEmpty else { throw .noToken }
        let key = Self.key(token)
        guard let issued = state.withLock({ $0.tokens[key] }), now.timeIntervalSince(issued.at) < Self.stopAuthoritySeconds else {
            throw .badToken
        }
        return Session(user: issued.user, role: .viewer, expiresAt: issued.at.addingTimeInterval(Self.stopAuthoritySeconds),
                       handle: String(key.prefix(8)))
    }

    public func logOut(token: String) {
        state.withLock { $0.tokens[Self.key(token)]?.ended = true }
    }

    /// A password or role changed, or the account was removed: every session of that user
    /// ends now (their WebSockets close within a second); the account is read again.
    public func accountChanged(_ name: String) {
        state.withLock {
            for (key, issued) in $0.tokens where issued.user == name { $0.tokens[key]?.ended = true }
            $0.accounts[name] = nil
        }
    }

    static func key(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
