import Foundation
import RobotTesting
import Testing

/// TLS from configuration: with a certificate and key the server speaks HTTPS only.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(10))) struct TLSTests {
    /// Runs a tool under a deadline (`ChildProcess`: a hung tool must not hang the suite).
    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let outcome = try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/env"), [tool] + arguments, timeoutSeconds: 45)
        return (outcome.status, outcome.output)
    }

    @Test func withACertificateTheServerSpeaksHTTPSOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificate = directory.appendingPathComponent("cert.pem").path, key = directory.appendingPathComponent("key.pem").path
        let made = try run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                                       "-days", "1", "-subj", "/CN=localhost"])
        try #require(made.status == 0, "openssl: \(made.output)")
        let rig = try await ServerRig(tls: (certificate, key))
        let secure = try run("curl", ["-sk", "--max-time", "10", "https://127.0.0.1:\(rig.port)/api/v1/health"])
        #expect(secure.output.contains("\"status\":\"ok\""), "\(secure.output)")
        let login = try run("curl", ["-sk", "--max-time", "10", "-H", "Content-Type: application/json",
                                     "-d", "{\"name\":\"otto\",\"password\":\"\(ServerRig.password)\"}", "https://127.0.0.1:\(rig.port)/api/v1/login"])
        #expect(login.output.contains("\"token\""))
        let plain = try run("curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(rig.port)/api/v1/health"])
        #expect(!plain.output.contains("\"status\":\"ok\""), "plain HTTP must not be served on the TLS port")
        // TLS 1.2 at least: a client that offers no more than 1.1 gets no session.
        // (SECLEVEL=0: OpenSSL 3's client would not offer 1.1 otherwise, and the test could not fail.)
        let old = try run("sh", ["-c", "echo | openssl s_client -connect 127.0.0.1:\(rig.port) -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>&1"])
        #expect(old.output.contains("Cipher is (NONE)"), "TLS 1.1 must get no session: \(old.output)")
        let offered = try run("sh", ["-c", "echo | openssl s_client -connect 127.0.0.1:\(rig.port) -tls1_2 2>&1"])
        #expect(offered.output.contains("TLSv1.2") && !offered.output.contains("Cipher is (NONE)"), "the same client gets 1.2: \(offered.output)")
        let current = try run("curl", ["-sk", "--max-time", "10", "--tlsv1.2", "--tls-max", "1.2", "https://127.0.0.1:\(rig.port)/api/v1/health"])
        #expect(current.output.contains("\"status\":\"ok\""), "TLS 1.2 is served: \(current.output)")
    }
}
