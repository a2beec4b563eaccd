import Foundation
import Testing

/// TLS from configuration: with a certificate and key the server speaks HTTPS only.
@Suite(.serialized) struct TLSTests {
    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
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
    }
}
