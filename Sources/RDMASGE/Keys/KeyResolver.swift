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
///
/// Extraction asks a resolver once per region, and reuses the answer for every later
/// piece inside its coverage, when the resolver keeps no count or takes references in
/// batches (``retainsInBatches``): then it takes the references of the region's further
/// SGEs with one ``retain(lkey:count:)`` and gives back a run of SGEs under one key with
/// one ``release(lkey:count:)``. A counting resolver that does not batch is asked once
/// per SGE, as before. Every SGE holds exactly one reference either way.
///
/// A conformer that counts and wants batches implements ``retain(lkey:count:)`` and
/// ``release(lkey:count:)`` and answers `true` from ``retainsInBatches``; every other
/// conformer needs none of the three.
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

    /// Whether ``retain(lkey:count:)`` takes references in one step (the default is
    /// `false`). Extraction then reuses a retaining lookup's answer for the later SGEs
    /// inside its coverage, and takes their references together.
    var retainsInBatches: Bool { get }

    /// Takes `count` more references on the region with `lkey`, on which the caller
    /// holds at least one from a retaining ``resolve(_:access:retaining:)`` (so the
    /// region cannot go meanwhile). Looks nothing up: the region is the one that answer
    /// named. Called only when ``retainsInBatches`` is `true`, or on a resolver that
    /// keeps no count; the default takes nothing, and traps for a counting resolver.
    func retain(lkey: UInt32, count: Int)

    /// Gives back `count` references taken on the region with `lkey`, as `count` calls
    /// of ``release(lkey:)`` would (the default makes them).
    func release(lkey: UInt32, count: Int)
}

extension KeyResolver {
    /// `true`: unless a resolver says otherwise, retaining lookups take references that
    /// must be released.
    public var retainsRegions: Bool { true }

    /// `false`: unless a resolver says otherwise, it takes references one lookup at a time.
    public var retainsInBatches: Bool { false }

    /// Takes nothing, for a resolver that keeps no count; traps for one that counts
    /// (it must implement this to answer `true` from ``retainsInBatches``).
    public func retain(lkey: UInt32, count: Int) {
        precondition(!retainsRegions, "\(Self.self) counts references but cannot take \(count) on lkey 0x\(String(lkey, radix: 16)) in one step")
    }

    /// Calls ``release(lkey:)`` `count` times.
    public func release(lkey: UInt32, count: Int) {
        for _ in 0..<count { release(lkey: lkey) }
    }

    /// Releases what extraction to SGEs retained for `sges`: the pins on their pages
    /// in `pins` (when extraction pinned), then one region reference per SGE, a run of
    /// SGEs under one key in one ``release(lkey:count:)``.
    /// ``SGERetention`` and `IOIterator.release(extractedSGEs:keys:ledger:)` come here.
    @inlinable
    func releaseExtracted<C: Collection<SGE>>(_ sges: C, pins: PinLedger?) {
        if let pins {
            pins.unpin(sges.lazy.flatMap(\.pages), count: SGE.pageCount(of: sges))
        }
        releaseReferences(of: sges)
    }

    /// Gives back one reference per SGE in `sges`, a run under one key in one call;
    /// nothing for a resolver that keeps no count.
    @inlinable
    func releaseReferences<C: Collection<SGE>>(of sges: C) {
        guard retainsRegions else { return }
        var iterator = sges.makeIterator()
        guard var run = iterator.next() else { return }
        var count = 1
        while let sge = iterator.next() {
            if sge.lkey == run.lkey {
                count &+= 1
            } else {
                release(lkey: run.lkey, count: count)
                (run, count) = (sge, 1)
            }
        }
        release(lkey: run.lkey, count: count)
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
