#if RDMA
import CVerbs
import Glibc
import Verbs

/// A completion queue of an ``RDMACMDomain``: the same queue as
/// ``IBVerbsCompletionQueue`` (`IBVerbsCompletionQueueCore`), on the device the
/// connection manager resolved.
public final class RDMACMCompletionQueue: CompletionQueue, @unchecked Sendable {
    /// The domain; kept alive until the queue is destroyed.
    public let domain: RDMACMDomain
    let core: IBVerbsCompletionQueueCore

    init(domain: RDMACMDomain, context: UnsafeMutablePointer<ibv_context>, capacity: Int,
         channel: IBVerbsCompletionChannel?) throws(VerbsError) {
        self.domain = domain
        self.core = try IBVerbsCompletionQueueCore(context: context, capacity: capacity, channel: channel)
    }

    /// The number of entries the queue holds (`cqe`, which may exceed what was asked for).
    public var capacity: Int { core.capacity }
    /// The channel the queue raises events on; kept alive by the queue.
    public var channel: (any CompletionChannel)? { core.channel }
    /// The live `ibv_cq`, or `nil` once destroyed.
    var cq: UnsafeMutablePointer<ibv_cq>? { core.polling.withLock { $0.cq?.pointer } }

    /// Moves completions into `completions` (`ibv_poll_cq`); status and opcode keep
    /// their libibverbs values.
    public func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        try core.poll(into: completions)
    }

    /// Arms the queue (`ibv_req_notify_cq`).
    public func requestNotification(solicitedOnly: Bool) throws(VerbsError) {
        try core.requestNotification(solicitedOnly: solicitedOnly)
    }

    /// Whether the channel took an event for this queue since the last call.
    public func takeNotification() -> Bool { core.takeNotification() }

    /// Acknowledges outstanding events and destroys the queue (`ibv_destroy_cq`); a
    /// second call does nothing.
    public func close() throws(VerbsError) { try core.close() }
}
#endif
