import Verbs

/// A memory region of a ``SoftVerbs`` device. Deregistered by ``deregister()`` or,
/// failing that, when the object is destroyed.
public final class SoftMemoryRegion: MemoryRegion, @unchecked Sendable {
    let device: SoftVerbs
    /// The first registered address.
    public let address: UInt
    /// The number of registered bytes.
    public let length: Int
    /// The key this side's SGEs carry.
    public let lkey: UInt32
    /// The key a peer's RDMA READ and WRITE carry.
    public let rkey: UInt32
    /// What the region allows.
    public let access: AccessFlags

    init(device: SoftVerbs, address: UInt, length: Int, lkey: UInt32, rkey: UInt32, access: AccessFlags) {
        self.device = device
        self.address = address
        self.length = length
        self.lkey = lkey
        self.rkey = rkey
        self.access = access
    }

    /// Deregisters the region; its keys are invalid afterwards, and deregistering twice
    /// does nothing. The corresponding C function is `ibv_dereg_mr`.
    public func deregister() throws(VerbsError) {
        device.state.withLock { $0.deregister(lkey: lkey) }
    }

    /// Whether the region is still registered.
    public var isRegistered: Bool { device.state.withLock { $0.regions[lkey] != nil } }

    deinit { device.state.withLock { $0.deregister(lkey: lkey) } }
}
