#if RDMA
import CVerbs
import Locking
import Verbs

/// A memory region of an ``IBVerbs`` device: pinned and mapped by the kernel until
/// ``deregister()`` or, failing that, until the last reference goes.
public final class IBVerbsMemoryRegion: MemoryRegion, @unchecked Sendable {
    /// The domain; kept alive until the region is gone.
    public let domain: IBVerbsProtectionDomain
    /// The first registered address; peers name it by the same address.
    public let address: UInt
    /// The number of registered bytes.
    public let length: Int
    /// The key this side's SGEs carry (`lkey` of `struct ibv_mr`).
    public let lkey: UInt32
    /// The key a peer's RDMA READ and WRITE carry (`rkey` of `struct ibv_mr`).
    public let rkey: UInt32
    /// What the region allows.
    public let access: AccessFlags
    private let handle: LockedValue<IBVerbsHandle<ibv_mr>?>

    init(domain: IBVerbsProtectionDomain, mr: UnsafeMutablePointer<ibv_mr>, address: UInt, length: Int, access: AccessFlags) {
        self.domain = domain
        self.address = address
        self.length = length
        self.lkey = mr.pointee.lkey
        self.rkey = mr.pointee.rkey
        self.access = access
        self.handle = LockedValue(IBVerbsHandle(mr))
    }

    /// Whether the region is still registered.
    public var isRegistered: Bool { handle.withLock { $0 != nil } }

    /// Deregisters the region; a second call does nothing. On failure the region stays
    /// registered and may be deregistered again.
    public func deregister() throws(VerbsError) {
        try handle.withLock { (mr) throws(VerbsError) in
            guard let live = mr else { return }
            try IBVerbsCalls.deregisterMR(live.pointer)
            mr = nil
        }
    }

    deinit { try? deregister() }
}
#endif
