/// Registered memory: a range of addresses the device may access, named by a local
/// key (for this side's SGEs) and a remote key (for a peer's RDMA READ and WRITE).
public protocol MemoryRegion: AnyObject, Sendable {
    /// The first registered address.
    var address: UInt { get }
    /// The number of registered bytes.
    var length: Int { get }
    /// The key this side's SGEs carry.
    var lkey: UInt32 { get }
    /// The key a peer's RDMA READ and WRITE carry.
    var rkey: UInt32 { get }
    /// What the region allows.
    var access: AccessFlags { get }

    /// Deregisters the region; its keys are invalid afterwards. Releasing twice is a
    /// no-op. The corresponding C function is `ibv_dereg_mr`.
    func deregister() throws(VerbsError)
}

extension MemoryRegion {
    /// The addresses the region covers.
    public var coverage: Range<UInt> { address..<address &+ UInt(length) }
}
