import CommandClient
import CommandServer
import Foundation
import RobotTesting
import Testing

/// The check source registered per detector, over loopback against the real server: the
/// supervisor registers the certificate, the officer's daily check then needs no number.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(5))) struct InstrumentAPITests {
    @Test func aRegisteredCheckSourceIsTheReferenceOfTheDailyCheck() async throws {
        let rig = try await ServerRig(timeScale: 10)
        let otto = try await rig.client("otto")
        let sam = try await rig.client("sam")
        #expect(await rig.waitFor(10) { rig.loop.detectorInfo != nil })
        rig.simulator.model.inject(.checkSource(microsievertsPerHour: 5))
        #expect(try await otto.acquireLease(client: "phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }

        // Nothing registered, nothing typed: refused with what to do.
        let none = try await otto.send("POST", "/api/v1/instrument/checks", json: ["seconds": 5], timeout: 60)
        #expect(none.status == 409 && none.errorCode == "check_source_reference", "\(none.text)")
        #expect(none.errorMessage?.contains("register its certificate") == true, "\(none.text)")
        #expect(try await otto.send("GET", "/api/v1/instrument/check-source").status == 404)

        // Only a supervisor registers, and a bad certificate is refused naming the field and the range.
        let certificate: [String: Any] = ["sourceId": "CS-0042", "referenceMicrosievertsPerHour": 5.0, "referenceDate": 20_260_101]
        #expect(try await otto.send("PUT", "/api/v1/instrument/check-source", json: certificate).status == 403)
        let future = try await sam.send("PUT", "/api/v1/instrument/check-source", json: [
            "sourceId": "CS-0042", "referenceMicrosievertsPerHour": 5.0, "referenceDate": 20_991_231])
        #expect(future.status == 422 || future.status == 400, "\(future.text)")
        #expect(future.errorMessage?.contains("referenceDate 20991231") == true, "\(future.text)")
        let registered = try await sam.send("PUT", "/api/v1/instrument/check-source", json: certificate)
        #expect(registered.status == 201, "\(registered.text)")
        let shown = try await otto.send("GET", "/api/v1/instrument/check-source")
        let today = try #require(shown.object["todayMicrosievertsPerHour"] as? Double)
        #expect(today < 5.0 && today > 4.8, "about a year of Cs-137 decay: \(today)")

        // The check now needs no number; a typed one that disagrees is refused.
        let check = try await otto.send("POST", "/api/v1/instrument/checks", json: ["seconds": 5], timeout: 60)
        #expect(check.status == 201, "\(check.text)")
        #expect(check.object["sourceId"] as? String == "CS-0042")
        #expect(abs((check.object["referenceMicrosievertsPerHour"] as? Double ?? 0) - today) < 1e-9)
        let typed = try await otto.send("POST", "/api/v1/instrument/checks", json: ["seconds": 5, "referenceMicrosievertsPerHour": 6.0],
                                        timeout: 60)
        #expect(typed.status == 409 && typed.errorMessage?.contains("disagrees with the registered check source CS-0042") == true,
                "\(typed.text)")
    }
}
