#if RDMA
import CVerbs
import Glibc
import Verbs

/// A completion queue of an ``IBVerbs`` device, polled, or armed and awaited on its
/// ``IBVerbsCompletionChannel``.
public final class IBVerbsCompletionQueue: CompletionQueue, @unchecked Sendable {
    /// The device; kept alive until the queue is gone.
    public let device: IBVerbs
    let core: IBVerbsCompletionQueueCore

    init(device: IBVerbs, capacity: Int, channel: IBVerbsCompletionChannel?) throws(VerbsError) {
        self.device = device
        self.core = try IBVerbsCompletionQueueCore(context: device.context, capacity: capacity, channel: channel)
    }

    /// The entries the device granted (at least the capacity asked for).
    public var capacity: Int { core.capacity }
    /// The channel the queue raises events on; kept alive by the queue.
    public var channel: (any CompletionChannel)? { core.channel }

    /// The live `ibv_cq`, for creating queue pairs.
    func withCQ<R>(_ call: VerbsCall, _ body: (UnsafeMutablePointer<ibv_cq>) throws(VerbsError) -> R) throws(VerbsError) -> R {
        try core.withCQ(call, body)
    }

    /// Moves completions into `completions`, converting each `struct ibv_wc`: the
    /// status and opcode keep their libibverbs values, immediate data comes back in
    /// host order. The corresponding C function is `ibv_poll_cq`.
    public func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        try core.poll(into: completions)
    }

    /// Arms the queue. The corresponding C function is `ibv_req_notify_cq`.
    public func requestNotification(solicitedOnly: Bool) throws(VerbsError) {
        try core.requestNotification(solicitedOnly: solicitedOnly)
    }

    /// Whether the channel took an event for this queue since the last call.
    public func takeNotification() -> Bool { core.takeNotification() }

    /// Acknowledges outstanding events and destroys the queue; a second call does nothing.
    /// - Throws: `EBUSY` (from the kernel) while a queue pair still reports to it.
    public func close() throws(VerbsError) { try core.close() }
}
#endif
