/// A protection domain: the scope in which memory regions and queue pairs may be used
/// together. A work request may only use regions of its queue pair's domain.
public protocol ProtectionDomain: AnyObject, Sendable {
    /// The memory regions this domain registers.
    associatedtype Region: MemoryRegion
    /// The completion queues this domain's queue pairs report to.
    associatedtype CompletionQueueType: CompletionQueue
    /// The queue pairs this domain makes.
    associatedtype QueuePairType: QueuePair
    /// The completion channels this domain's completion queues raise events on.
    associatedtype CompletionChannelType: CompletionChannel

    /// The device's limits.
    var attributes: DeviceAttributes { get }

    /// Registers `length` bytes at `address` with `access`.
    ///
    /// The corresponding C function is `ibv_reg_mr`.
    /// - Throws: `EINVAL` for an empty or wrapping range, a region larger than the
    ///   device allows, or remote write/atomic access without local write; `EFAULT`
    ///   when part of the range is not mapped memory; `ENOMEM` when the device has no
    ///   room for another region.
    func registerMemory(address: UInt, length: Int, access: AccessFlags) throws(VerbsError) -> Region

    /// Creates a completion channel of the domain's device. The corresponding C
    /// function is `ibv_create_comp_channel`.
    func createCompletionChannel() throws(VerbsError) -> CompletionChannelType

    /// Creates a completion queue of at least `capacity` entries that raises its events
    /// on `channel` (none when `nil`: the queue is only polled). The queue keeps the
    /// channel alive. The corresponding C function is `ibv_create_cq`.
    func createCompletionQueue(capacity: Int, channel: CompletionChannelType?) throws(VerbsError) -> CompletionQueueType

    /// Creates a reliable-connected queue pair in the reset state.
    /// The corresponding C function is `ibv_create_qp` with `IBV_QPT_RC`.
    func createQueuePair(
        sendCompletions: CompletionQueueType, receiveCompletions: CompletionQueueType,
        capabilities: QueuePairCapabilities
    ) throws(VerbsError) -> QueuePairType

    /// Releases the domain. Every region and queue pair of the domain must be released
    /// first. The corresponding C function is `ibv_dealloc_pd`.
    /// - Throws: `EBUSY` while regions or queue pairs of the domain remain.
    func close() throws(VerbsError)
}

extension ProtectionDomain {
    /// Creates a completion queue of at least `capacity` entries without a channel: it
    /// is only polled. The corresponding C function is `ibv_create_cq`.
    public func createCompletionQueue(capacity: Int) throws(VerbsError) -> CompletionQueueType {
        try createCompletionQueue(capacity: capacity, channel: nil)
    }
}
