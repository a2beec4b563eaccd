/// The wire time of a real serial line, which a pty does not have.
///
/// A reply is held back by: request on the wire + the 3.5-character gap that ends it +
/// the device's turnaround + reply on the wire. The master then sees the same
/// round-trip time it would on RS-485 at that baud rate.
public struct LineTiming: Sendable, Equatable, Codable {
    public var enabled: Bool
    public var baud: Int
    /// Bits per character: start + 8 data + parity + stop (10 for 8N1, 11 for 8E1).
    public var bitsPerCharacter: Int
    /// Time the firmware takes between the end of a request and the start of its reply.
    public var turnaroundMicroseconds: Int

    public init(enabled: Bool = false, baud: Int = 115_200, bitsPerCharacter: Int = 10, turnaroundMicroseconds: Int = 500) {
        self.enabled = enabled
        self.baud = baud
        self.bitsPerCharacter = bitsPerCharacter
        self.turnaroundMicroseconds = turnaroundMicroseconds
    }

    public func characterMicroseconds() -> Double {
        Double(bitsPerCharacter) * 1_000_000 / Double(baud)
    }

    /// The inter-frame gap: 3.5 characters, fixed at 1750 μs above 19200 baud as the
    /// Modbus serial line specification says.
    public func interFrameGapMicroseconds() -> Double {
        baud > 19_200 ? 1750 : 3.5 * characterMicroseconds()
    }

    /// Time from the first request byte leaving the master to the last reply byte arriving.
    public func roundTripMicroseconds(requestBytes: Int, responseBytes: Int) -> Double {
        Double(requestBytes + responseBytes) * characterMicroseconds() + interFrameGapMicroseconds()
            + Double(turnaroundMicroseconds)
    }
}
