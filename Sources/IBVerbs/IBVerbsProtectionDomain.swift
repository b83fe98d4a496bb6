#if RDMA
import CVerbs
import Glibc
import Locking
import Verbs

/// A protection domain of an ``IBVerbs`` device.
///
/// Deallocated by ``close()`` or, failing that, when the last reference goes. Every
/// region and queue pair of the domain keeps it alive, so that cannot happen before
/// they are gone.
public final class IBVerbsProtectionDomain: ProtectionDomain, @unchecked Sendable {
    /// The device.
    public let device: IBVerbs
    let handle: LockedValue<IBVerbsHandle<ibv_pd>?>

    init(device: IBVerbs, pd: UnsafeMutablePointer<ibv_pd>) {
        self.device = device
        self.handle = LockedValue(IBVerbsHandle(pd))
    }

    /// The device's limits.
    public var attributes: DeviceAttributes { device.attributes }

    /// Runs `body` with the live `ibv_pd`.
    func withPD<R>(_ call: VerbsCall, _ body: (UnsafeMutablePointer<ibv_pd>) throws(VerbsError) -> R) throws(VerbsError) -> R {
        try handle.withLock { (pd) throws(VerbsError) -> R in
            guard let pd else { throw VerbsError(call, errno: EINVAL, "the protection domain was closed") }
            return try body(pd.pointer)
        }
    }

    /// Registers `length` bytes at `address`, naming them to peers by the same address
    /// (the I/O virtual address equals the virtual address).
    ///
    /// The corresponding C function is `ibv_reg_mr_iova2`, the path the `ibv_reg_mr`
    /// macro takes.
    public func registerMemory(address: UInt, length: Int, access: AccessFlags) throws(VerbsError) -> IBVerbsMemoryRegion {
        guard length > 0, !address.addingReportingOverflow(UInt(length)).overflow else {
            throw VerbsError(.registerMemory, errno: EINVAL, "\(length) bytes at 0x\(String(address, radix: 16)) is no valid range")
        }
        let mr = try withPD(.registerMemory) { (pd) throws(VerbsError) in
            try IBVerbsCalls.registerMR(pd, address: address, length: length, access: access.rawValue)
        }
        return IBVerbsMemoryRegion(domain: self, mr: mr, address: address, length: length, access: access)
    }

    /// Registers the bytes of `buffer`. The corresponding C function is `ibv_reg_mr`.
    public func registerMemory(_ buffer: UnsafeMutableRawBufferPointer, access: AccessFlags) throws(VerbsError) -> IBVerbsMemoryRegion {
        try registerMemory(address: UInt(bitPattern: buffer.baseAddress), length: buffer.count, access: access)
    }

    /// Creates a completion channel of the device. The corresponding C function is
    /// `ibv_create_comp_channel`; its descriptor is made non-blocking.
    public func createCompletionChannel() throws(VerbsError) -> IBVerbsCompletionChannel {
        try IBVerbsCompletionChannel(context: device.context, owner: device)
    }

    /// Creates a completion queue of at least `capacity` entries that raises its events
    /// on `channel` (none when `nil`). The corresponding C function is `ibv_create_cq`.
    /// - Throws: `EINVAL` for a capacity outside 1 through the device's
    ///   `maxCompletionQueueEntries` or a destroyed channel; what `ibv_create_cq` reports.
    public func createCompletionQueue(capacity: Int, channel: IBVerbsCompletionChannel?) throws(VerbsError) -> IBVerbsCompletionQueue {
        guard (1...device.attributes.maxCompletionQueueEntries).contains(capacity) else {
            throw VerbsError(.createCompletionQueue, errno: EINVAL,
                             "capacity \(capacity) is outside 1...\(device.attributes.maxCompletionQueueEntries)")
        }
        return try IBVerbsCompletionQueue(device: device, capacity: capacity, channel: channel)
    }

    /// Creates a reliable-connected queue pair in the reset state that reports to
    /// `sendCompletions` and `receiveCompletions`. The corresponding C function is
    /// `ibv_create_qp` with `IBV_QPT_RC`.
    public func createQueuePair(
        sendCompletions: IBVerbsCompletionQueue, receiveCompletions: IBVerbsCompletionQueue,
        capabilities: QueuePairCapabilities
    ) throws(VerbsError) -> IBVerbsQueuePair {
        try IBVerbsQueuePair(domain: self, sendCompletions: sendCompletions, receiveCompletions: receiveCompletions,
                             capabilities: capabilities)
    }

    /// Deallocates the domain; a second call does nothing.
    /// - Throws: `EBUSY` (from the kernel) while regions or queue pairs of the domain remain.
    public func close() throws(VerbsError) {
        try handle.withLock { (pd) throws(VerbsError) in
            guard let live = pd else { return }
            try IBVerbsCalls.deallocatePD(live.pointer)
            pd = nil
        }
    }

    deinit { try? close() }
}
#endif
