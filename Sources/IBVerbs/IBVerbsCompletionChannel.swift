#if RDMA
import CVerbs
import Glibc
import Locking
import Verbs

/// A completion channel of a libibverbs device (`struct ibv_comp_channel`), for the
/// completion queues of an ``IBVerbsProtectionDomain``.
///
/// Its descriptor is in non-blocking mode, so ``takeEvents()`` drains what waits and
/// returns. Each event names its queue through the `cq_context` the queue was created
/// with (an unretained pointer to the queue's `IBVerbsCompletionQueueCore`); the
/// channel marks that queue notified and counts the event for the queue, which
/// acknowledges its events in batches and the rest before it is destroyed.
public final class IBVerbsCompletionChannel: CompletionChannel, @unchecked Sendable {
    /// What keeps the device context alive: the device or the connection manager's domain.
    let owner: AnyObject
    /// The descriptor, readable while an event waits (non-blocking).
    public let fileDescriptor: Int32
    let handle: LockedValue<IBVerbsHandle<ibv_comp_channel>?>

    /// Creates a channel on `context`, kept alive by `owner`.
    init(context: UnsafeMutablePointer<ibv_context>, owner: AnyObject) throws(VerbsError) {
        let channel = try IBVerbsCalls.createCompletionChannel(context)
        do throws(VerbsError) {
            try IBVerbsCalls.setNonBlocking(channel.pointee.fd, .createCompletionChannel)
        } catch {
            try? IBVerbsCalls.destroyCompletionChannel(channel)
            throw error
        }
        self.owner = owner
        self.fileDescriptor = channel.pointee.fd
        self.handle = LockedValue(IBVerbsHandle(channel))
    }

    /// The live channel, for creating queues on it.
    func withChannel<R>(_ call: VerbsCall, _ body: (UnsafeMutablePointer<ibv_comp_channel>) throws(VerbsError) -> R) throws(VerbsError) -> R {
        try handle.withLock { (channel) throws(VerbsError) -> R in
            guard let channel else { throw VerbsError(call, errno: EINVAL, "the completion channel was destroyed") }
            return try body(channel.pointer)
        }
    }

    /// Takes every waiting event (`ibv_get_cq_event` until `EAGAIN`) and hands each to
    /// the queue it names, which marks itself notified and acknowledges in batches.
    public func takeEvents() throws(VerbsError) -> Int {
        try withChannel(.getCompletionEvent) { (channel) throws(VerbsError) -> Int in
            var taken = 0
            while let context = try IBVerbsCalls.getCQEvent(channel) {
                // No retain: the queue cannot be gone while an event for it is not
                // acknowledged (`ibv_destroy_cq` waits for that), and it may be in its
                // deinit, where a strong reference must not be taken.
                Unmanaged<IBVerbsCompletionQueueCore>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.eventTaken() }
                taken += 1
            }
            return taken
        }
    }

    /// Destroys the channel (`ibv_destroy_comp_channel`); a second call does nothing.
    /// - Throws: `EBUSY` while a completion queue still uses it.
    public func close() throws(VerbsError) {
        try handle.withLock { (channel) throws(VerbsError) in
            guard let live = channel else { return }
            try IBVerbsCalls.destroyCompletionChannel(live.pointer)
            channel = nil
        }
    }

    deinit { try? close() }
}

/// What a completion queue of either libibverbs domain is: the `ibv_cq`, polling
/// without allocating, arming, and the events its channel took for it.
///
/// Two locks, so that destroying the queue never waits on itself: `polling` guards
/// the `ibv_cq` for polling, arming and destroying; `events` (small, never held across
/// a blocking call) counts the events taken and not yet acknowledged. ``close()``
/// marks the queue closing and acknowledges what was counted under `events`, then
/// calls `ibv_destroy_cq`, which blocks until every event reported for the queue is
/// acknowledged; a ``IBVerbsCompletionChannel/takeEvents()`` that fetched one
/// meanwhile finds the queue closing and acknowledges it at once.
final class IBVerbsCompletionQueueCore: @unchecked Sendable {
    struct Polling {
        var cq: IBVerbsHandle<ibv_cq>?
        /// Where `ibv_poll_cq` writes, so that polling does not allocate.
        let entries: IBVerbsHandle<ibv_wc>
    }

    struct Events {
        var cq: IBVerbsHandle<ibv_cq>?
        var unacknowledged: UInt32 = 0
        var notified = false
        var closing = false
    }

    static let batch = 16
    /// Events acknowledged together.
    static let acknowledgementBatch: UInt32 = 16
    /// The channel the queue raises events on; kept alive by the queue.
    let channel: IBVerbsCompletionChannel?
    let polling: LockedValue<Polling>
    let events = LockedValue(Events())
    /// The entries the device granted.
    private(set) var capacity = 0

    /// Creates the queue of `capacity` entries on `context`, raising events on `channel`.
    init(context: UnsafeMutablePointer<ibv_context>, capacity: Int, channel: IBVerbsCompletionChannel?) throws(VerbsError) {
        self.channel = channel
        let entries = UnsafeMutablePointer<ibv_wc>.allocate(capacity: Self.batch)
        entries.initialize(repeating: ibv_wc(), count: Self.batch)
        polling = LockedValue(Polling(cq: nil, entries: IBVerbsHandle(entries)))
        let eventContext = Unmanaged.passUnretained(self).toOpaque()
        let cq: UnsafeMutablePointer<ibv_cq>
        if let channel {
            cq = try channel.withChannel(.createCompletionQueue) { (channel) throws(VerbsError) in
                try IBVerbsCalls.createCQ(context, entries: capacity, eventContext: eventContext, channel: channel)
            }
        } else {
            cq = try IBVerbsCalls.createCQ(context, entries: capacity, eventContext: eventContext, channel: nil)
        }
        self.capacity = Int(cq.pointee.cqe)
        polling.withLock { $0.cq = IBVerbsHandle(cq) }
        events.withLock { $0.cq = IBVerbsHandle(cq) }
    }

    /// The live `ibv_cq`, for creating queue pairs.
    func withCQ<R>(_ call: VerbsCall, _ body: (UnsafeMutablePointer<ibv_cq>) throws(VerbsError) -> R) throws(VerbsError) -> R {
        try polling.withLock { (state) throws(VerbsError) -> R in
            guard let cq = state.cq else { throw VerbsError(call, errno: EINVAL, "the completion queue was destroyed") }
            return try body(cq.pointer)
        }
    }

    /// Moves completions into `completions`, converting each `struct ibv_wc`: the
    /// status and opcode keep their libibverbs values, immediate data comes back in
    /// host order.
    func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        try polling.withLock { (state) throws(VerbsError) -> Int in
            guard let cq = state.cq else {
                throw VerbsError(.pollCompletionQueue, errno: EINVAL, "the completion queue was destroyed")
            }
            let entries = state.entries.pointer
            var moved = 0
            while moved < completions.count {
                let polled = try IBVerbsCalls.pollCQ(cq.pointer, entries, count: min(Self.batch, completions.count - moved))
                for i in 0..<polled { completions[moved + i] = Self.completion(entries + i) }
                moved += polled
                if polled < Self.batch { break }
            }
            return moved
        }
    }

    static func completion(_ wc: UnsafePointer<ibv_wc>) -> WorkCompletion {
        let entry = wc.pointee
        return WorkCompletion(
            id: entry.wr_id, status: WorkCompletionStatus(rawValue: entry.status.rawValue) ?? .generalError,
            opcode: WorkCompletionOpcode(rawValue: entry.opcode.rawValue) ?? .send, byteCount: Int(entry.byte_len),
            immediateData: cverbs_wc_has_imm(wc) != 0 ? cverbs_wc_imm(wc) : nil, queuePairNumber: entry.qp_num)
    }

    /// Arms the queue (`ibv_req_notify_cq`).
    func requestNotification(solicitedOnly: Bool) throws(VerbsError) {
        guard channel != nil else {
            throw VerbsError(.requestNotification, errno: EINVAL, "the completion queue has no channel; poll it")
        }
        try withCQ(.requestNotification) { (cq) throws(VerbsError) in
            try IBVerbsCalls.requestNotification(cq, solicitedOnly: solicitedOnly)
        }
    }

    /// Whether an event was taken for the queue since the last call; clears the mark.
    func takeNotification() -> Bool {
        events.withLock { state in
            defer { state.notified = false }
            return state.notified
        }
    }

    /// Counts an event the channel took for this queue; acknowledges a full batch, or
    /// at once while the queue is being destroyed.
    func eventTaken() {
        events.withLock { state in
            guard let cq = state.cq else { return }
            state.notified = true
            state.unacknowledged += 1
            if state.closing || state.unacknowledged >= Self.acknowledgementBatch {
                IBVerbsCalls.acknowledgeCQEvents(cq.pointer, count: state.unacknowledged)
                state.unacknowledged = 0
            }
        }
    }

    /// Acknowledges the outstanding events, then destroys the queue; a second call does nothing.
    /// - Throws: `EBUSY` (from the kernel) while a queue pair still reports to it.
    func close() throws(VerbsError) {
        try polling.withLock { (state) throws(VerbsError) in
            guard let cq = state.cq else { return }
            events.withLock { events in
                events.closing = true
                if events.unacknowledged > 0 {
                    IBVerbsCalls.acknowledgeCQEvents(cq.pointer, count: events.unacknowledged)
                    events.unacknowledged = 0
                }
            }
            do throws(VerbsError) {
                try IBVerbsCalls.destroyCQ(cq.pointer)
            } catch {
                events.withLock { $0.closing = false }
                throw error
            }
            state.cq = nil
            events.withLock { $0.cq = nil }
        }
    }

    deinit {
        try? close()
        polling.withLock { $0.entries.pointer.deallocate() }
    }
}
#endif
