import IterExtract

/// The key that covers the start of an address range, and how far it covers.
@frozen
public struct KeyResolution: Hashable, Sendable {
    /// The local key of the covering region.
    public var lkey: UInt32
    /// The addresses the region covers; the range's first byte is inside it.
    public var coverage: Range<UInt>

    /// The answer `lkey`, valid for every address in `coverage`.
    @inlinable
    public init(lkey: UInt32, coverage: Range<UInt>) {
        self.lkey = lkey
        self.coverage = coverage
    }
}

/// Maps addresses to the local keys of the memory regions that cover them.
///
/// Extraction to SGEs asks a resolver for the key of each piece of memory; a piece
/// that straddles two regions is split at the boundary. A resolver that keeps regions
/// alive on demand (``MRCache``) counts references: a lookup with `retaining: true`
/// takes one on the covering region, and ``release(lkey:)`` gives it back. Resolvers
/// over memory registered by its owner (``SingleKeyResolver``, ``RegionTable``) keep
/// no count and ignore both.
public protocol KeyResolver {
    /// Resolves the region that covers the first byte of `range`.
    ///
    /// `range.length` tells the resolver how much the caller would like covered (an MR
    /// cache registers that much on a miss); the answer may cover less.
    ///
    /// - Throws: ``RDMAError/zeroLength(address:)``, ``RDMAError/addressOverflow(address:length:)``,
    ///   ``RDMAError/unregisteredMemory(address:)``, ``RDMAError/accessDenied(address:lkey:missing:)``,
    ///   ``RDMAError/registrationFailed(_:)``. A failed lookup takes no reference.
    func resolve(_ range: MemoryRange, access: AccessFlags, retaining: Bool) throws(RDMAError) -> KeyResolution

    /// Releases one reference taken by a retaining ``resolve(_:access:retaining:)``
    /// on the region with `lkey`.
    func release(lkey: UInt32)

    /// Whether retaining lookups take references that must be released. A resolver
    /// that keeps no count (the default is `true`) lets extraction ask once per region
    /// and reuse the answer for every later piece inside its coverage.
    var retainsRegions: Bool { get }
}

extension KeyResolver {
    /// `true`: unless a resolver says otherwise, retaining lookups take references that
    /// must be released.
    public var retainsRegions: Bool { true }

    /// Releases what extraction to SGEs retained for `sges`: the pins on their pages
    /// in `pins` (when extraction pinned), then one region reference per SGE.
    /// ``SGERetention`` and `IOIterator.release(extractedSGEs:keys:ledger:)` come here.
    @inlinable
    func releaseExtracted<C: Collection<SGE>>(_ sges: C, pins: PinLedger?) {
        if let pins {
            pins.unpin(sges.lazy.flatMap(\.pages), count: SGE.pageCount(of: sges))
        }
        for sge in sges { release(lkey: sge.lkey) }
    }

    /// Checks the input every resolver refuses: empty and wrapping ranges.
    @inlinable
    func validate(_ range: MemoryRange) throws(RDMAError) {
        guard range.length > 0 else { throw .zeroLength(address: range.address) }
        guard !range.address.addingReportingOverflow(UInt(range.length)).overflow else {
            throw .addressOverflow(address: range.address, length: range.length)
        }
    }
}
