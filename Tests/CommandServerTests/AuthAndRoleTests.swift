import CommandClient
import CommandServer
import Foundation
import InspectionStore
import RobotTesting
import Testing

/// Who may do what, over loopback against the real server.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct AuthAndRoleTests {
    @Test func eachRoleIsAllowedItsCallsAndRefusedTheOthers() async throws {
        let rig = try await ServerRig()
        let viewer = try await rig.client("vera")
        let operatorClient = try await rig.client("otto")
        let supervisor = try await rig.client("sam")

        // Everyone logged in may watch.
        for client in [viewer, operatorClient, supervisor] {
            #expect(try await client.send("GET", "/api/v1/state").status == 200)
            #expect(try await client.send("GET", "/api/v1/scans").status == 200)
            #expect(try await client.send("GET", "/api/v1/profiles").status == 200)
        }
        // A viewer may not command, plan scans or take the lease.
        let refused = try await viewer.command(["type": "measure", "seconds": 1])
        #expect(refused.status == 403)
        #expect(refused.errorCode == "forbidden")
        #expect(refused.errorMessage?.contains("needs the operator role") == true, "\(refused.text)")
        #expect(try await viewer.acquireLease(client: "phone").status == 403)
        #expect(try await viewer.send("POST", "/api/v1/scans", json: ["containerNumber": "CSQU3054383", "size": "22G1"]).status == 403)
        // An operator may command and plan, but not manage users, profiles or calibrations, or take over.
        #expect(try await operatorClient.command(["type": "measure", "seconds": 0.2]).status == 202)
        #expect(try await operatorClient.send("POST", "/api/v1/scans", json: ["containerNumber": "CSQU3054383", "size": "22G1"]).status == 201)
        #expect(try await operatorClient.send("GET", "/api/v1/users").status == 403)
        #expect(try await operatorClient.send("POST", "/api/v1/users", json: ["name": "eve", "role": "supervisor", "password": "0123456789ab"]).status == 403)
        #expect(try await operatorClient.send("POST", "/api/v1/lease/takeover", json: ["client": "x"]).status == 403)
        #expect(try await operatorClient.send("GET", "/api/v1/audit").status == 403)
        #expect(try await operatorClient.send("PUT", "/api/v1/profiles/mine", raw: Data("name: x".utf8), contentType: "application/yaml").status == 403)
        // A supervisor may.
        let added = try await supervisor.send("POST", "/api/v1/users", json: ["name": "nina", "role": "operator", "password": "a long enough password"])
        #expect(added.status == 201, "\(added.text)")
        #expect(try await supervisor.send("GET", "/api/v1/users").status == 200)
        #expect(try await supervisor.send("GET", "/api/v1/audit").status == 200)
        let calibration = try await supervisor.send("POST", "/api/v1/calibrations", json: [
            "serialNumber": "GD-1", "calibrationFactor": 1.02, "calibrationDate": 20260101, "calibrationExpiry": 20270101,
            "certificate": "NIM-2026-0042"])
        #expect(calibration.status == 201, "\(calibration.text)")
        // The new user can log in; a too-short password is refused with the rule.
        let nina = CommandClient(baseURL: rig.baseURL)
        #expect(try await nina.logIn(name: "nina", password: "a long enough password").status == 200)
        let short = try await supervisor.send("POST", "/api/v1/users", json: ["name": "tim", "role": "viewer", "password": "short"])
        #expect(short.status == 422)
        #expect(short.errorMessage?.contains("at least 10 characters") == true)
        // A role change ends the user's sessions at once; logged in again, the new role holds.
        #expect(try await supervisor.send("PATCH", "/api/v1/users/nina", json: ["role": "viewer"]).status == 200)
        #expect(try await nina.command(["type": "stop"]).status == 401)
        #expect(try await nina.logIn(name: "nina", password: "a long enough password").status == 200)
        #expect(try await nina.command(["type": "stop"]).status == 403)
    }

    @Test func noTokenABadTokenAndAnExpiredTokenAreRefused() async throws {
        let rig = try await ServerRig(tokenLifetimeSeconds: 1)
        let anonymous = CommandClient(baseURL: rig.baseURL)
        let none = try await anonymous.send("GET", "/api/v1/state")
        #expect(none.status == 401)
        #expect(none.errorCode == "unauthenticated")
        #expect(none.errorMessage?.contains("POST /api/v1/login") == true)

        let forged = CommandClient(baseURL: rig.baseURL, token: "not-a-token")
        let bad = try await forged.send("POST", "/api/v1/commands", json: ["type": "stop"])
        #expect(bad.status == 401)
        #expect(bad.errorCode == "bad_token")

        let client = try await rig.client("otto")
        #expect(try await client.send("GET", "/api/v1/state").status == 200)
        try await Task.sleep(nanoseconds: 1_300_000_000)
        let expired = try await client.send("GET", "/api/v1/state")
        #expect(expired.status == 401)
        #expect(expired.errorCode == "token_expired")
        #expect(expired.errorMessage?.contains("log in again") == true)

        let wrong = try await anonymous.logIn(name: "otto", password: "wrong password!")
        #expect(wrong.status == 401)
        #expect(wrong.errorCode == "bad_credentials")
    }

    @Test func failedLogInsAreRateLimitedEvenForTheRightPassword() async throws {
        let rig = try await ServerRig()
        let client = CommandClient(baseURL: rig.baseURL)
        for _ in 0..<5 {
            #expect(try await client.logIn(name: "olga", password: "guess guess guess").status == 401)
        }
        let limited = try await client.logIn(name: "olga", password: ServerRig.password)
        #expect(limited.status == 429)
        #expect(limited.errorCode == "rate_limited")
        #expect(limited.headers["retry-after"] != nil)
        #expect(limited.errorMessage?.contains("try again in") == true)
        // Other users are not locked out.
        #expect(try await client.logIn(name: "otto", password: ServerRig.password).status == 200)
    }

    @Test func passwordsAreStoredAsSlowKDFCredentialsAndVerified() throws {
        let credential = try PasswordHasher.credential(for: "correct horse battery")
        #expect(credential.hasPrefix("scrypt$16384$8$1$"))
        #expect(!credential.contains("correct horse"))
        #expect(PasswordHasher.verify("correct horse battery", against: credential))
        #expect(!PasswordHasher.verify("correct horse batterY", against: credential))
        #expect(!PasswordHasher.verify("correct horse battery", against: "scrypt$garbage"))
        // Two credentials for one password differ (random salt).
        #expect(try PasswordHasher.credential(for: "correct horse battery") != credential)
    }
}
