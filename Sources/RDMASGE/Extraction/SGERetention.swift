import IterExtract

/// What extraction to SGEs retained, to be given back exactly once: one region
/// reference per SGE in a key resolver and, for a user-backed iterator, one pin per
/// page of each SGE in a ledger.
///
/// The value cannot be copied, and ``release(_:)`` consumes it, so the compiler sees
/// to "at most once"; dropping one without releasing it traps, so that a leak of pins
/// or references shows where it happens rather than as a region that never goes away.
/// Make one with ``IterExtract/IOIterator/retention(keys:ledger:)`` from the iterator
/// the SGEs came from, or directly when you know what was taken.
///
/// Mirrors the release half of the kernel's `iov_iter_extract_pages` contract
/// (`unpin_user_pages`), extended to memory-region references.
public struct SGERetention: ~Copyable {
    private struct Holders {
        var keys: any KeyResolver
        var pins: PinLedger?
    }

    /// Where the retained references and pins are; `nil` once released.
    private var holders: Holders?

    /// The resolver that holds one reference per SGE on the region covering it.
    public var keys: any KeyResolver { holders!.keys }
    /// The ledger that holds the pins on the SGEs' pages; `nil` when extraction pinned
    /// nothing (the iterator was not user-backed).
    public var pins: PinLedger? { holders!.pins }

    /// A retention of region references in `keys` and, when `pins` is not `nil`, of
    /// page pins in `pins`.
    public init(keys: any KeyResolver, pins: PinLedger?) {
        holders = Holders(keys: keys, pins: pins)
    }

    /// Gives back what extraction retained for `sges`, which must be exactly the SGEs
    /// it produced: the pins on their pages (in one ledger call), then one region
    /// reference per SGE. Call it once the work requests naming them have completed.
    public consuming func release<C: Collection<SGE>>(_ sges: C) {
        let holders = self.holders.take()!
        holders.keys.releaseExtracted(sges, pins: holders.pins)
    }

    deinit {
        precondition(holders == nil, "an SGE retention was dropped without release(_:): its pins and region references leak")
    }
}

extension IOIterator {
    /// What extraction from this iterator to SGEs retains with `keys` and `ledger`:
    /// region references always, pins only for a user-backed iterator.
    @inlinable
    public func retention(keys: any KeyResolver, ledger: PinLedger = .shared) -> SGERetention {
        SGERetention(keys: keys, pins: extractionWillPin ? ledger : nil)
    }
}
