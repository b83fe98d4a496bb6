import IterExtract

/// One key over one address range: memory registered once as a whole, such as a
/// `PagePool` registered as a single memory region.
///
/// The userspace analogue of the kernel's `local_dma_lkey`, which
/// `smb_extract_iter_to_rdma` puts in every SGE. Lookups take no lock and keep no count.
public struct SingleKeyResolver: KeyResolver, Hashable, Sendable {
    /// The local key.
    public let lkey: UInt32
    /// The addresses the key covers.
    public let coverage: Range<UInt>
    /// What the region allows.
    public let access: AccessFlags

    /// A resolver that answers `lkey` for every address in `coverage`.
    public init(lkey: UInt32, coverage: Range<UInt>, access: AccessFlags) {
        precondition(!coverage.isEmpty, "a single-key resolver covers at least one byte")
        self.lkey = lkey
        self.coverage = coverage
        self.access = access
    }

    /// A resolver for a registered memory region.
    public init(region: some MemoryRegion) {
        self.init(lkey: region.lkey, coverage: region.address..<region.address + UInt(region.length),
                  access: region.access)
    }

    /// Answers ``lkey`` for a range that starts inside ``coverage``; takes no reference,
    /// whatever `retaining` says.
    ///
    /// - Throws: ``RDMAError/zeroLength(address:)`` and ``RDMAError/addressOverflow(address:length:)``
    ///   for an empty or wrapping range; ``RDMAError/unregisteredMemory(address:)`` when the
    ///   first byte is outside ``coverage``; ``RDMAError/accessDenied(address:lkey:missing:)``
    ///   when the region does not allow `access`.
    public func resolve(_ range: MemoryRange, access: AccessFlags, retaining: Bool) throws(RDMAError) -> KeyResolution {
        try validate(range)
        guard coverage.contains(range.address) else { throw .unregisteredMemory(address: range.address) }
        guard self.access.isSuperset(of: access) else {
            throw .accessDenied(address: range.address, lkey: lkey, missing: access.subtracting(self.access))
        }
        return KeyResolution(lkey: lkey, coverage: coverage)
    }

    /// Does nothing: the resolver keeps no count.
    public func release(lkey: UInt32) {}

    /// `false`: lookups keep no count.
    public var retainsRegions: Bool { false }
}
