#if canImport(Glibc)
import Glibc
#endif
import Locking
import Verbs

/// An RDMA device simulated in process, exactly: the embedded default backend.
///
/// It keeps the rules a real device keeps and completes with the statuses a real
/// device reports: every SGE is checked against its memory region (lkey, bounds,
/// local write access for receives and RDMA READ targets), every remote access
/// against the peer's region (rkey, bounds, remote write or read access), posts
/// beyond the SGE limit or queue depth are refused as `ibv_post_send` refuses them,
/// and a queue pair in the error state flushes what is outstanding. Data moves by
/// real memory copies from the sender's SGEs into the receiver's posted buffers, at
/// post time, in order per queue pair. Two queue pairs of one device connect to each
/// other with `QueuePair.connect(_:_:)`.
///
/// Failures can be injected with ``inject(_:)``. All state sits behind one lock, so
/// every object may be used from any thread.
///
/// Copying by virtual address hides one thing a real device does: it keeps the
/// *physical* pages a memory region pinned at registration, so after the program
/// unmaps the memory and maps new memory at the same address, the device still reads
/// and writes the old pages. A device made with `tracksPhysicalPages: true` shows it,
/// and with it what `fork()` does to registered memory; `forkProtection: true` adds
/// what `ibv_fork_init` does against that (see
/// ``init(name:attributes:tracksPhysicalPages:forkProtection:)``).
public final class SoftVerbs: VerbsDevice, @unchecked Sendable {
    /// The device's name; its queue pairs use it as their GID.
    public let name: String
    /// The limits the device enforces.
    public let attributes: DeviceAttributes
    /// Whether memory regions check, at every access, that their pages are still the
    /// physical pages they were registered with.
    public let tracksPhysicalPages: Bool
    /// Whether registration keeps a region's pages out of a `fork()` child
    /// (`MADV_DONTFORK`), as libibverbs does once fork protection is enabled.
    public let forkProtection: Bool
    let state: LockedValue<SoftVerbsState>

    /// Limits like those of a soft-RoCE (`rxe`) device: 32 SGEs, 8 MiB messages.
    public static let defaultAttributes = DeviceAttributes(
        maxSGEs: 32, maxMemoryRegionSize: 1 << 40, maxMemoryRegions: 1 << 16, maxQueuePairWorkRequests: 1 << 14,
        maxCompletionQueueEntries: 1 << 15, maxMessageSize: 8 << 20, maxInlineData: 256)

    /// What a read through a memory region delivers for a page that is no longer the
    /// one it was registered with, on a device that tracks physical pages: `0xDB` in
    /// every byte. A real device would deliver the old page's bytes, which the program
    /// no longer sees; a fixed pattern makes the stale read recognisable.
    public static let poisonByte: UInt8 = 0xDB

    /// Whether this process can read which physical page backs each of its virtual pages
    /// (`/proc/self/pagemap` frame numbers, which need `CAP_SYS_ADMIN`): the condition for
    /// `tracksPhysicalPages: true`.
    public static var canTrackPhysicalPages: Bool { PageFrames.isReadable }

    /// Opens a simulated device.
    ///
    /// With `tracksPhysicalPages`, a test mode, registration faults in the region's pages,
    /// as `ibv_reg_mr` pins them, and records which physical frame backs each page. Every
    /// access the device makes through the region (gathering SEND and RDMA WRITE sources,
    /// scattering into receive and RDMA READ targets, and a peer's RDMA READ and WRITE
    /// through the rkey) compares the current frame of each page it touches with the
    /// recorded one, and where they differ behaves as a real device would with its
    /// pinned old page: a read delivers ``poisonByte`` (the old bytes are no longer the
    /// program's) and a write goes nowhere. The region holds its pages until it is
    /// deregistered (each is referenced from a pipe of its own, as a pin references it),
    /// so that the kernel cannot hand an unmapped page's frame to the new mapping; a
    /// region larger than a pipe holds (1 MiB without `CAP_SYS_RESOURCE`) holds only its
    /// first pages. Off by default; off, accesses cost what they always did.
    ///
    /// The hold is a page reference, not a pin (`vmsplice(2)` takes references), so
    /// `fork()` makes a tracked region's pages copy-on-write, as Linux did for every
    /// registered page before 5.9 (a real device's pages are pinned, and Linux copies
    /// pinned pages for the child at fork since then): the parent's first write to such
    /// a page after a fork, anywhere on the page, moves the parent to a copy, and the
    /// device's accesses through the region then behave as above. That is the hazard
    /// `ibv_fork_init` exists for.
    ///
    /// With `forkProtection`, the device does what libibverbs does for every
    /// registration after `ibv_fork_init` enabled fork protection (`IBV_FORK_ENABLED`):
    /// registration marks the region's pages `MADV_DONTFORK` (whole pages, so the bytes
    /// around a region that starts or ends mid-page go too), a `fork()` child then has
    /// no memory there, and deregistration marks them `MADV_DOFORK` again once no other
    /// region is on them. Pages are counted across every device of the process made with
    /// fork protection, as libibverbs counts them across devices, so overlapping and
    /// neighbouring regions keep their pages out of a child until the last of them is
    /// deregistered. Registration then fails first with the `errno` of `madvise(2)`, as
    /// `ibv_reg_mr` does: `ENOMEM` for a range that is not all mapped (rather than
    /// `EFAULT`). Off by default.
    ///
    /// - Precondition: `tracksPhysicalPages` only where ``canTrackPhysicalPages``.
    public init(name: String = "soft0", attributes: DeviceAttributes = SoftVerbs.defaultAttributes,
                tracksPhysicalPages: Bool = false, forkProtection: Bool = false) {
        precondition(!tracksPhysicalPages || Self.canTrackPhysicalPages,
                     "tracking physical pages needs /proc/self/pagemap frame numbers (CAP_SYS_ADMIN): check SoftVerbs.canTrackPhysicalPages")
        self.name = name
        self.attributes = attributes
        self.tracksPhysicalPages = tracksPhysicalPages
        self.forkProtection = forkProtection
        self.state = LockedValue(SoftVerbsState(attributes: attributes, tracksPhysicalPages: tracksPhysicalPages,
                                                forkProtection: forkProtection))
    }

    deinit { close(state.withLock { $0.deviceEventDescriptor }) }

    /// Allocates a protection domain. The corresponding C function is `ibv_alloc_pd`.
    public func allocateProtectionDomain() throws(VerbsError) -> SoftProtectionDomain {
        let handle = state.withLock { state in
            let handle = state.makeHandle()
            state.domainUsers[handle] = 0
            return handle
        }
        return SoftProtectionDomain(device: self, handle: handle)
    }

    /// The descriptor that is readable while an asynchronous event waits.
    public var eventFileDescriptor: Int32 { state.withLock { $0.deviceEventDescriptor } }

    /// Takes the next asynchronous event, if any. The corresponding C functions are
    /// `ibv_get_async_event` and `ibv_ack_async_event`.
    public func takeEvent() throws(VerbsError) -> DeviceEvent? {
        state.withLock { $0.takeDeviceEvent() }
    }

    /// Brings the port's link up or down, as unplugging a cable or a switch failing
    /// would: raises `DeviceEvent.portActive(port:)` or `DeviceEvent.portError(port:)`
    /// on a change, and while the link is down every send request completes with
    /// `WorkCompletionStatus.retryExceededError` and moves its queue pair to the
    /// error state.
    public func setPortActive(_ active: Bool) {
        state.withLock { state in
            guard state.portActive != active else { return }
            state.portActive = active
            state.raise(active ? .portActive(port: 1) : .portError(port: 1))
        }
    }

    /// Arms a failure; see ``SoftVerbsFault``.
    public func inject(_ fault: SoftVerbsFault) {
        state.withLock { $0.faults.inject(fault) }
    }

    /// The number of memory regions registered on the device.
    public var registeredRegionCount: Int { state.withLock { $0.regions.count } }
}
