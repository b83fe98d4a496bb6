/// The limits of an RDMA device, as `ibv_query_device` and `ibv_query_port` report them.
public struct DeviceAttributes: Hashable, Sendable {
    /// The most SGEs in one work request (`max_sge`).
    public var maxSGEs: Int
    /// The largest memory region in bytes (`max_mr_size`).
    public var maxMemoryRegionSize: Int
    /// The most memory regions (`max_mr`).
    public var maxMemoryRegions: Int
    /// The deepest work queue (`max_qp_wr`).
    public var maxQueuePairWorkRequests: Int
    /// The most entries in a completion queue (`max_cqe`).
    public var maxCompletionQueueEntries: Int
    /// The largest message (the port's `max_msg_sz`).
    public var maxMessageSize: Int
    /// The most bytes a work request may carry inline (`max_inline_data` of a queue pair).
    public var maxInlineData: Int

    /// Device limits with the given values.
    public init(maxSGEs: Int, maxMemoryRegionSize: Int, maxMemoryRegions: Int, maxQueuePairWorkRequests: Int,
                maxCompletionQueueEntries: Int, maxMessageSize: Int, maxInlineData: Int) {
        self.maxSGEs = maxSGEs
        self.maxMemoryRegionSize = maxMemoryRegionSize
        self.maxMemoryRegions = maxMemoryRegions
        self.maxQueuePairWorkRequests = maxQueuePairWorkRequests
        self.maxCompletionQueueEntries = maxCompletionQueueEntries
        self.maxMessageSize = maxMessageSize
        self.maxInlineData = maxInlineData
    }
}

/// An opened RDMA device.
///
/// Backends: `SoftVerbs` (in-process, the default) and, with the `RDMA` trait, a
/// libibverbs backend. Every RDMA path in the library is written against these
/// protocols, so it runs unchanged on either.
public protocol VerbsDevice: AnyObject, Sendable {
    /// The protection domains this device makes.
    associatedtype Domain: ProtectionDomain

    /// The device's name (`ibv_get_device_name`).
    var name: String { get }
    /// The device's limits. The corresponding C function is `ibv_query_device`.
    var attributes: DeviceAttributes { get }

    /// Allocates a protection domain. The corresponding C function is `ibv_alloc_pd`.
    func allocateProtectionDomain() throws(VerbsError) -> Domain

    /// The descriptor that is readable while an asynchronous event waits, in
    /// non-blocking mode (the device context's `async_fd`).
    var eventFileDescriptor: Int32 { get }

    /// Takes the next asynchronous event without blocking and acknowledges it; `nil`
    /// when none waits. The corresponding C functions are `ibv_get_async_event` and
    /// `ibv_ack_async_event`.
    func takeEvent() throws(VerbsError) -> DeviceEvent?
}
