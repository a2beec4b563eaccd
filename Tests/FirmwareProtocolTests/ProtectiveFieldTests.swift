import FirmwareProtocol
import RobotTesting
import Testing

/// H9.1's minimum fields, as `ProtectiveFieldMinimum` computes them, against the figures
/// the protocol document quotes (`firmware-protocol/README.md` §9.2).
@Suite(.enabled(if: TestTier.fast)) struct ProtectiveFieldTests {
    @Test func theMinimumFieldsAreTheOnesTheProtocolQuotes() {
        let fast = ProtectiveFieldMinimum.driving(speedMetresPerSecond: 0.5)
        #expect(abs(fast.ahead - 1.235) < 1e-9 && abs(fast.side - 1.06) < 1e-9, "\(fast)")
        let slow = ProtectiveFieldMinimum.driving(speedMetresPerSecond: -0.2)
        #expect(abs(slow.ahead - 0.62) < 1e-9 && abs(slow.side - 0.58) < 1e-9, "reversing counts as its speed: \(slow)")
        #expect(abs(ProtectiveFieldMinimum.allRound() - 0.26) < 1e-9)
        // Turning on the spot: the corner's speed adds to the walker's over the time to stop.
        #expect(abs(ProtectiveFieldMinimum.allRound(cornerSpeedMetresPerSecond: 0.3, stopSeconds: 0.2) - ((0.3 + 1.6) * 0.3 + 0.1)) < 1e-9)
        // A faster-reacting firmware may use a smaller field.
        #expect(ProtectiveFieldMinimum.driving(speedMetresPerSecond: 0.5, responseSeconds: 0.05).ahead < fast.ahead)
    }
}
