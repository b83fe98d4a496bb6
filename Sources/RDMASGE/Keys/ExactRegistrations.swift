import IterExtract
import Locking

/// Memory regions that cover exactly the bytes asked for, one per lookup, deregistered
/// at their release: the key resolver for memory a peer reaches.
///
/// A region's rkey leaves the process (in an SMB Direct buffer descriptor, say), and
/// the device lets the peer read or write every byte of the region. ``MRCache`` rounds
/// registrations to pages, grows them over idle neighbours and keeps them after their
/// last release; through such a region a peer reaches bytes before and after the
/// buffer (for a `[UInt8]`, the heap's metadata) and keeps reaching them after the
/// I/O, for as long as the region serves anyone. Here every retaining lookup
/// registers exactly `range` (no page rounding, no merging, no reuse), answers with
/// exactly that coverage, and ``release(lkey:)`` deregisters the region, so the rkey
/// is dead when it returns: a peer's access one byte outside the range, or after the
/// release, fails with a remote access error.
///
/// The kernel's SMB Direct client gets the same guarantee from fast-registration
/// memory regions: it maps the I/O's pages into an MR with a work request
/// (`IB_WR_REG_MR`) before sending the descriptors and invalidates the MR when the
/// request completes (`smbd_register_mr`, `smbd_deregister_mr`). User space has no
/// fast registration; its cheap equivalent is a type-2 memory window bound per request
/// over one long-lived region (`ibv_bind_mw`) and invalidated on completion, which
/// avoids a system call per I/O. This first version registers per use instead: it is
/// simple, runs on every backend (`SoftVerbs` and any libibverbs device, with or
/// without memory windows), and the rkey is certainly dead when ``release(lkey:)``
/// returns, because the region itself is gone. It costs one `ibv_reg_mr` and one
/// `ibv_dereg_mr` per region of each I/O.
///
/// Every lookup must retain (extraction to SGEs always does) and every reference is
/// released exactly once; a region still registered when the resolver goes away is
/// deregistered then.
public final class ExactRegistrations<Domain: ProtectionDomain>: KeyResolver, @unchecked Sendable {
    /// What the resolver holds: the live regions by lkey, and the count of all it registered.
    private struct Held {
        var regions: [UInt32: Domain.Region] = [:]
        var registrations = 0
    }

    /// The domain regions are registered in.
    public let domain: Domain
    /// The access every registration gets.
    public let access: AccessFlags
    private let held = LockedValue(Held())

    /// A resolver that registers memory in `domain` with `access` (for a peer, `.remoteRead`,
    /// or `[.localWrite, .remoteWrite]`).
    public init(domain: Domain, access: AccessFlags) {
        self.domain = domain
        self.access = access
    }

    deinit {
        for region in held.withLock({ $0.regions.values }) { try? region.deregister() }
    }

    /// The regions registered now (each is one lookup not yet released).
    public var regionCount: Int { held.withLock { $0.regions.count } }
    /// The bytes the live regions cover.
    public var registeredBytes: Int { held.withLock { $0.regions.values.reduce(0) { $0 + $1.length } } }
    /// The regions registered since the resolver was made, released or not.
    public var registrationCount: Int { held.withLock { $0.registrations } }

    /// The live region with `lkey`, if any (for its rkey, to expose it to a peer).
    public func region(lkey: UInt32) -> Domain.Region? {
        held.withLock { $0.regions[lkey] }
    }

    /// Registers exactly `range` (at most the device's largest region size of it) and
    /// answers with its key and exactly that coverage. The region lives until
    /// ``release(lkey:)``.
    ///
    /// - Precondition: `retaining`: a region nobody releases would stay open to the peer.
    /// - Throws: ``RDMAError/zeroLength(address:)``, ``RDMAError/addressOverflow(address:length:)``,
    ///   ``RDMAError/accessDenied(address:lkey:missing:)`` for access the resolver does not
    ///   grant, ``RDMAError/registrationFailed(_:)`` when the device refuses the
    ///   registration. A failed lookup registers nothing.
    public func resolve(_ range: MemoryRange, access: AccessFlags, retaining: Bool) throws(RDMAError) -> KeyResolution {
        precondition(retaining, "an exact registration lives from a retaining lookup to its release")
        try validate(range)
        guard self.access.isSuperset(of: access) else {
            throw .accessDenied(address: range.address, lkey: nil, missing: access.subtracting(self.access))
        }
        let length = min(range.length, domain.attributes.maxMemoryRegionSize)
        let region: Domain.Region
        do throws(VerbsError) {
            region = try domain.registerMemory(address: range.address, length: length, access: self.access)
        } catch {
            throw .registrationFailed(error)
        }
        held.withLock { held in
            held.regions[region.lkey] = region
            held.registrations += 1
        }
        return KeyResolution(lkey: region.lkey, coverage: range.address..<range.address + UInt(length))
    }

    /// Deregisters the region with `lkey`: when this returns, its rkey opens nothing.
    /// A region the backend refuses to deregister is forgotten all the same.
    ///
    /// - Precondition: the region was registered by ``resolve(_:access:retaining:)`` and
    ///   not released yet.
    public func release(lkey: UInt32) {
        guard let region = held.withLock({ $0.regions.removeValue(forKey: lkey) }) else {
            preconditionFailure("lkey \(lkey) names no exact registration: released twice, or never registered here")
        }
        try? region.deregister()
    }
}
