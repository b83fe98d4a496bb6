#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CompletionQueue {
    /// Moves up to `completions.count` completions into `completions`, waiting for
    /// the first one on the queue's channel without spinning, at most `timeout` (for
    /// ever when `nil`). Returns how many it moved: 0 only when the time ran out (or
    /// `interruption` became readable).
    ///
    /// Closes the race between the last poll and the arming: it polls, arms the queue
    /// (``requestNotification(solicitedOnly:)``), polls again, and only then sleeps in
    /// `poll(2)` on the channel's descriptor until an event names this queue. So a
    /// completion that arrives at any moment either is found by a poll or raises an
    /// event. With `solicitedOnly` the sleep ends only for a solicited receive or an
    /// error (what `ibv_req_notify_cq` with `solicited_only` wakes for); completions
    /// already in the queue are returned regardless.
    ///
    /// With `interruption`, the sleep also ends, returning 0, when that descriptor is
    /// readable: a connection's event descriptor (`VerbsConnection/eventFileDescriptor`),
    /// so that a thread waiting for completions hears at once that the peer went away.
    ///
    /// The thread blocks: call it from a thread of your own, not from a Swift
    /// concurrency task (use ``completions(on:solicitedOnly:)`` there). One thread
    /// at a time reads a channel.
    ///
    /// The corresponding C functions are `ibv_poll_cq`, `ibv_req_notify_cq`,
    /// `ibv_get_cq_event` and `ibv_ack_cq_events`.
    /// - Throws: What the calls report (`EINVAL` for a destroyed queue or channel).
    /// - Precondition: The queue was created with a channel.
    public func wait(
        into completions: UnsafeMutableBufferPointer<WorkCompletion>, timeout: Duration? = nil, solicitedOnly: Bool = false,
        interruption: Int32? = nil
    ) throws(VerbsError) -> Int {
        guard let channel else { preconditionFailure("a completion queue without a channel cannot wait; poll it") }
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        while true {
            var moved = try poll(into: completions)
            if moved > 0 { return moved }
            try requestNotification(solicitedOnly: solicitedOnly)
            moved = try poll(into: completions)
            if moved > 0 { return moved }
            while !takeNotification() {
                let woken = try sleepUntilReadable(channel.fileDescriptor, or: interruption, until: deadline, call: .getCompletionEvent)
                guard woken == channel.fileDescriptor else { return 0 }
                _ = try channel.takeEvents()
            }
        }
    }

    /// The oldest completion, waiting for it as ``wait(into:timeout:solicitedOnly:interruption:)``
    /// does; `nil` when `timeout` ran out first.
    public func wait(timeout: Duration? = nil, solicitedOnly: Bool = false) throws(VerbsError) -> WorkCompletion? {
        var result: Result<WorkCompletion?, VerbsError> = .success(nil)
        withUnsafeTemporaryAllocation(of: WorkCompletion.self, capacity: 1) { buffer in
            buffer.initialize(repeating: WorkCompletion(id: 0, status: .success, opcode: .send, byteCount: 0, queuePairNumber: 0))
            result = Result { () throws(VerbsError) -> WorkCompletion? in
                try wait(into: buffer, timeout: timeout, solicitedOnly: solicitedOnly) == 1 ? buffer[0] : nil
            }
            buffer.deinitialize()
        }
        return try result.get()
    }
}
