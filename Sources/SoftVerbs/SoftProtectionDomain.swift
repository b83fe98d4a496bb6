#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CEventPoll
import Verbs

/// A protection domain of a ``SoftVerbs`` device.
public final class SoftProtectionDomain: ProtectionDomain, @unchecked Sendable {
    let device: SoftVerbs
    let handle: UInt32

    init(device: SoftVerbs, handle: UInt32) {
        self.device = device
        self.handle = handle
    }

    /// The device's limits.
    public var attributes: DeviceAttributes { device.attributes }

    /// Registers `length` bytes at `address` with `access`. The corresponding C function
    /// is `ibv_reg_mr`.
    /// - Throws: what `ProtectionDomain.registerMemory(address:length:access:)` lists, and
    ///   `EFAULT`, as `ibv_reg_mr` reports when it cannot pin the pages, when part of the
    ///   range is not mapped in this process; on a device with fork protection, the
    ///   `errno` of `madvise(MADV_DONTFORK)` before anything else (`ENOMEM` for a range
    ///   not all mapped), as `ibv_reg_mr` reports it after `ibv_fork_init`.
    public func registerMemory(address: UInt, length: Int, access: AccessFlags) throws(VerbsError) -> SoftMemoryRegion {
        let keys = try device.state.withLock { (state) throws(VerbsError) in
            try state.register(domain: handle, address: address, length: length, access: access)
        }
        return SoftMemoryRegion(device: device, address: address, length: length, lkey: keys.lkey, rkey: keys.rkey, access: access)
    }

    /// Registers the bytes of `buffer`. The corresponding C function is `ibv_reg_mr`.
    public func registerMemory(_ buffer: UnsafeMutableRawBufferPointer, access: AccessFlags) throws(VerbsError) -> SoftMemoryRegion {
        try registerMemory(address: UInt(bitPattern: buffer.baseAddress), length: buffer.count, access: access)
    }

    /// Creates a completion channel: an `eventfd(2)` of its own. The corresponding C
    /// function is `ibv_create_comp_channel`.
    /// - Throws: the `errno` of `eventfd(2)` (`EMFILE` when out of descriptors).
    public func createCompletionChannel() throws(VerbsError) -> SoftCompletionChannel {
        let descriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard descriptor >= 0 else {
            throw VerbsError(.createCompletionChannel, errno: errno, "eventfd(2) failed")
        }
        let handle = device.state.withLock { state in
            let handle = state.makeHandle()
            state.channels[handle] = SoftVerbsState.Channel(descriptor: descriptor)
            return handle
        }
        return SoftCompletionChannel(device: device, handle: handle, fileDescriptor: descriptor)
    }

    /// Creates a completion queue of `capacity` entries that raises its events on
    /// `channel`. The corresponding C function is `ibv_create_cq`.
    /// - Throws: `EINVAL` for a capacity outside 1 through the device's
    ///   `maxCompletionQueueEntries`, or a channel of another device or destroyed.
    public func createCompletionQueue(capacity: Int, channel: SoftCompletionChannel?) throws(VerbsError) -> SoftCompletionQueue {
        guard (1...device.attributes.maxCompletionQueueEntries).contains(capacity) else {
            throw VerbsError(.createCompletionQueue, errno: EINVAL,
                             "capacity \(capacity) is outside 1...\(device.attributes.maxCompletionQueueEntries)")
        }
        if let channel, channel.device !== device {
            throw VerbsError(.createCompletionQueue, errno: EINVAL, "the channel belongs to another device")
        }
        let handle = try device.state.withLock { (state) throws(VerbsError) in
            if let channel {
                guard state.channels[channel.handle] != nil else {
                    throw VerbsError(.createCompletionQueue, errno: EINVAL, "the completion channel was destroyed")
                }
                state.channels[channel.handle]!.users += 1
            }
            let handle = state.makeHandle()
            state.queues[handle] = SoftVerbsState.Queue(capacity: capacity, channel: channel?.handle)
            return handle
        }
        return SoftCompletionQueue(device: device, handle: handle, capacity: capacity, channel: channel)
    }

    /// Creates a reliable-connected queue pair in the reset state that reports to
    /// `sendCompletions` and `receiveCompletions`. The corresponding C function is
    /// `ibv_create_qp` with `IBV_QPT_RC`.
    public func createQueuePair(
        sendCompletions: SoftCompletionQueue, receiveCompletions: SoftCompletionQueue, capabilities: QueuePairCapabilities
    ) throws(VerbsError) -> SoftQueuePair {
        let number = try device.state.withLock { (state) throws(VerbsError) in
            try state.createPair(domain: handle, sendQueue: sendCompletions.handle,
                                 receiveQueue: receiveCompletions.handle, capabilities: capabilities)
        }
        return SoftQueuePair(device: device, number: number, capabilities: capabilities)
    }

    /// Releases the domain; a second call does nothing. The corresponding C function is
    /// `ibv_dealloc_pd`.
    /// - Throws: `EBUSY` while regions or queue pairs of the domain remain.
    public func close() throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            guard let users = state.domainUsers[handle] else { return }
            guard users == 0 else {
                throw VerbsError(.deallocateProtectionDomain, errno: EBUSY, "\(users) regions or queue pairs remain")
            }
            state.domainUsers[handle] = nil
        }
    }

    deinit { try? close() }
}
