import Crypto
import Foundation
import InspectionStore
import Synchronization

/// Log-in and tokens. Tokens are random 256-bit values held only in memory (as their
/// SHA-256), so a restart logs everyone out. Failed log-ins are rate-limited per user
/// name: after `maxFailures` inside `failureWindowSeconds`, that name is locked for
/// `lockoutSeconds`, even for the right password.
public final class Authenticator: Sendable {
    public struct Session: Sendable, Equatable {
        public let user: String
        public let role: Role
        public let expiresAt: Date
        /// A short, non-secret handle for logs (the first 8 hex digits of the token's hash).
        public let handle: String
    }

    struct State {
        var sessions: [String: Session] = [:]
        var failures: [String: [Date]] = [:]
        var lockedUntil: [String: Date] = [:]
        /// Every token issued in the last `stopAuthoritySeconds`, by key: the e-stop accepts
        /// them even expired or logged out (stopping is always safe).
        var issued: [String: (user: String, at: Date)] = [:]
    }

    /// How long a token this process issued keeps the authority to press the e-stop.
    public static let stopAuthoritySeconds: Double = 86_400

    let store: ScanStore
    let tokenLifetimeSeconds: Double
    let maxFailures: Int
    let failureWindowSeconds: Double
    let lockoutSeconds: Double
    let state = Mutex(State())

    public init(store: ScanStore, tokenLifetimeSeconds: Double, maxFailures: Int = 5, failureWindowSeconds: Double = 60,
                lockoutSeconds: Double = 60) {
        self.store = store
        self.tokenLifetimeSeconds = tokenLifetimeSeconds
        self.maxFailures = maxFailures
        self.failureWindowSeconds = failureWindowSeconds
        self.lockoutSeconds = lockoutSeconds
    }

    /// Checks a password and issues a token. Every refusal says the same about names and
    /// passwords, so it does not tell which one was wrong.
    public func logIn(name: String, password: String, now: Date = Date()) throws(APIError) -> (token: String, session: Session) {
        if let until = state.withLock({ $0.lockedUntil[name] }), until > now {
            var error = APIError(.tooManyRequests, "rate_limited",
                                 "too many failed log-ins for '\(name)'; try again in \(Int(until.timeIntervalSince(now).rounded(.up))) s")
            error.headers[.retryAfter] = "\(Int(until.timeIntervalSince(now).rounded(.up)))"
            throw error
        }
        let account: ScanStore.UserAccount?
        do {
            account = try store.user(named: name)
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the user store could not be read: \(error)")
        }
        guard let account, let role = Role(rawValue: account.role), PasswordHasher.verify(password, against: account.credential) else {
            recordFailure(name, now: now)
            throw APIError(.unauthorized, "bad_credentials", "unknown user or wrong password")
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let key = Self.key(token)
        let session = Session(user: account.name, role: role, expiresAt: now.addingTimeInterval(tokenLifetimeSeconds), handle: String(key.prefix(8)))
        state.withLock {
            $0.failures[name] = nil
            // Expired sessions are kept a day, so their tokens are refused as expired rather than unknown.
            $0.sessions = $0.sessions.filter { $0.value.expiresAt.addingTimeInterval(86_400) > now }
            $0.sessions[key] = session
            $0.issued = $0.issued.filter { now.timeIntervalSince($0.value.at) < Self.stopAuthoritySeconds }
            $0.issued[key] = (account.name, now)
        }
        return (token, session)
    }

    private func recordFailure(_ name: String, now: Date) {
        state.withLock {
            var recent = ($0.failures[name] ?? []).filter { now.timeIntervalSince($0) < failureWindowSeconds }
            recent.append(now)
            if recent.count >= maxFailures {
                $0.lockedUntil[name] = now.addingTimeInterval(lockoutSeconds)
                recent = []
            }
            $0.failures[name] = recent
        }
    }

    /// The session behind a bearer token.
    public func session(for token: String?, now: Date = Date()) throws(APIError) -> Session {
        guard let token, !token.isEmpty else { throw .noToken }
        guard let session = state.withLock({ $0.sessions[Self.key(token)] }) else { throw .badToken }
        guard session.expiresAt > now else { throw .expiredToken }
        // A role changed or a user removed since log-in takes effect at once.
        guard let account = try? store.user(named: session.user), let role = Role(rawValue: account.role) else { throw .badToken }
        return Session(user: session.user, role: role, expiresAt: session.expiresAt, handle: session.handle)
    }

    /// Who may press the e-stop: the holder of any token this process issued in the last
    /// `stopAuthoritySeconds`, even if it has expired, was logged out, or its user was
    /// removed or demoted since. Needs no SQLite, so a store fault cannot block a stop.
    public func stopAuthority(for token: String?, now: Date = Date()) throws(APIError) -> Session {
        guard let token, !token.isEmpty else { throw .noToken }
        let key = Self.key(token)
        guard let issued = state.withLock({ $0.issued[key] }), now.timeIntervalSince(issued.at) < Self.stopAuthoritySeconds else {
            throw .badToken
        }
        return Session(user: issued.user, role: .viewer, expiresAt: issued.at.addingTimeInterval(Self.stopAuthoritySeconds),
                       handle: String(key.prefix(8)))
    }

    public func logOut(token: String) {
        _ = state.withLock { $0.sessions.removeValue(forKey: Self.key(token)) }
    }

    static func key(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
