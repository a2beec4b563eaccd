import CommandClient
import CommandServer
import Foundation
import RobotAPI
import RobotSimulator
import RobotTesting
import Testing

/// People in the robot's path (protocol 1.1 H9) through the whole stack in real time: the
/// simulator's firmware over a pty stops the chassis, the loop holds the walk and goes on
/// when the path has been clear for 2 s, the state the phones read says so, and the audit
/// log keeps each step with where the robot stood.
@Suite(.serialized, .enabled(if: TestTier.hil), .timeLimit(.minutes(5))) struct PeopleAPITests {
    @Test func aPersonCrossingStopsAWalkThatGoesOnAndEveryStepIsAudited() async throws {
        let rig = try await ServerRig()
        let otto = try await rig.client("otto")
        #expect(try await otto.acquireLease(client: "otto-phone").status == 200)
        let keepAlive = otto.keepLeaseAlive()
        defer { keepAlive.cancel() }
        #expect(try await otto.state().people.scanner == .clear)

        // The robot stands at (-12, 1) facing +x; someone walks slowly across 2.2 m ahead.
        let now = rig.simulator.model.simulatedSeconds
        rig.simulator.model.addPerson(WalkingPerson(fromX: -9.6, fromY: -1.5, toX: -9.6, toY: 4.5, speedMetresPerSecond: 0.8,
                                                    startSeconds: now + 1.5))
        let walk = Task { try await otto.command(["type": "walk", "metres": 3.0], wait: true) }
        var sawHeld = false
        let deadline = Date().addingTimeInterval(40)
        while Date() < deadline {
            let state = try await otto.state()
            if state.people.held { sawHeld = true }
            if sawHeld && !state.people.held && !state.pose.moving && abs(state.pose.xMetres - (-9)) < 0.03 { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let reply = try await walk.value
        #expect(reply.object["state"] as? String == "done", "\(reply.text)")
        #expect(sawHeld, "the state showed the walk held for the person")
        #expect(rig.simulator.model.contacts.isEmpty, "contacts: \(rig.simulator.model.contacts)")
        #expect(abs(rig.simulator.model.truth().x - (-9)) < 0.03, "the walk arrived: \(rig.simulator.model.truth().x)")
        let final = try await otto.state()
        #expect(final.people.protectiveStops >= 1)

        // The journal drains twice a second.
        #expect(await rig.waitFor(3) {
            let actions = ((try? rig.store.auditEntries(limit: 1000)) ?? []).map(\.action)
            return actions.contains("people.protectiveStop") && actions.contains("people.resumed")
        })
        let stop = try #require(try rig.store.auditEntries(limit: 1000).first { $0.action == "people.protectiveStop" })
        #expect(stop.actor == "robot")
        #expect(stop.detail.contains("heading"), "\(stop.detail)")
    }
}
