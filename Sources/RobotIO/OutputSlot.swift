/// A register range the control loop writes cyclically, without allocating.
///
/// The loop fills the slot's preallocated buffer with `ModbusBus.post`; the bus thread
/// sends the newest contents at the slot's priority, ahead of queued requests of the
/// same priority. Posting again before the bus sent the previous contents replaces
/// them (the newest set-point wins), so a caller that needs an edge (0 then 1) waits
/// until `sentSequence` reaches the sequence `post` returned.
public final class OutputSlot: @unchecked Sendable {
    public let unit: UInt8
    public let address: UInt16
    public let capacity: Int
    public let priority: BusPriority

    // Guarded by the owning bus's condition lock.
    let storage: UnsafeMutablePointer<UInt16>
    var count = 0
    var dirty = false
    var postedSequence: UInt64 = 0
    var postedAtNanoseconds: UInt64 = 0

    // Guarded by the owning bus's state lock.
    var sent: UInt64 = 0
    var sentAt: UInt64 = 0
    var postToWireNanoseconds: UInt64 = 0
    var failedSequence: UInt64 = 0
    var failures: UInt64 = 0
    var consecutiveFailures = 0
    var lastErrorKind: BusError.Kind?

    init(unit: UInt8, address: UInt16, capacity: Int, priority: BusPriority) {
        self.unit = unit
        self.address = address
        self.capacity = capacity
        self.priority = priority
        storage = .allocate(capacity: capacity)
        storage.initialize(repeating: 0, count: capacity)
    }

    deinit {
        storage.deallocate()
    }

    /// Fills the slot and marks it for sending; the caller holds its bus's lock. Does not
    /// allocate. Returns the post's sequence number.
    func stage(_ fill: (UnsafeMutableBufferPointer<UInt16>) -> Int, at now: UInt64) -> UInt64 {
        let n = fill(UnsafeMutableBufferPointer(start: storage, count: capacity))
        count = min(max(n, 1), capacity)
        dirty = true
        postedSequence &+= 1
        postedAtNanoseconds = now
        return postedSequence
    }

    /// What the bus has done with this slot's posts; the caller holds its bus's lock.
    func statusSnapshot() -> OutputSlotStatus {
        OutputSlotStatus(sentSequence: sent, sentAtNanoseconds: sentAt, postToWireNanoseconds: postToWireNanoseconds,
                         failedSequence: failedSequence, failures: failures, consecutiveFailures: consecutiveFailures,
                         lastError: lastErrorKind)
    }
}

/// What the bus has done with a slot's posts.
public struct OutputSlotStatus: Sendable, Equatable {
    /// The sequence of the last post that reached the wire and was acknowledged.
    public let sentSequence: UInt64
    /// CLOCK_MONOTONIC time that write completed.
    public let sentAtNanoseconds: UInt64
    /// Time from that post to the write completing on the wire.
    public let postToWireNanoseconds: UInt64
    /// The sequence of the last post whose write failed after its retries. A failed write is
    /// not sent again: a caller waiting for a post must look here too, or wait for ever.
    public let failedSequence: UInt64
    /// Writes from this slot that failed after retries, and how many in a row.
    public let failures: UInt64
    public let consecutiveFailures: Int
    public let lastError: BusError.Kind?

    /// The post with sequence `posted` (or a newer one) reached the wire.
    public func landed(_ posted: UInt64) -> Bool { sentSequence >= posted }

    /// The post with sequence `posted` (or a newer one) failed and nothing newer landed.
    public func failed(_ posted: UInt64) -> Bool { sentSequence < posted && failedSequence >= posted }
}
