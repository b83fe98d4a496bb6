#if RDMA
import CVerbs
import Glibc
import Verbs

/// A memory region of an ``RDMACMDomain`` (`ibv_reg_mr`, I/O virtual address = address).
public final class RDMACMMemoryRegion: MemoryRegion, @unchecked Sendable {
    /// The domain; kept alive until the region is deregistered.
    public let domain: RDMACMDomain
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
    var mr: UnsafeMutablePointer<ibv_mr>?

    init(domain: RDMACMDomain, mr: UnsafeMutablePointer<ibv_mr>, address: UInt, length: Int, access: AccessFlags) {
        self.domain = domain
        self.mr = mr
        self.address = address
        self.length = length
        self.lkey = mr.pointee.lkey
        self.rkey = mr.pointee.rkey
        self.access = access
    }

    /// Deregisters the region (`ibv_dereg_mr`); a second call does nothing.
    public func deregister() throws(VerbsError) {
        guard let mr else { return }
        let status = ibv_dereg_mr(mr)
        guard status == 0 else { throw VerbsError(.deregisterMemory, errno: status, "ibv_dereg_mr") }
        self.mr = nil
    }

    deinit { try? deregister() }
}
#endif
