import IterExtract

/// The bookkeeping of an ``MRCache``, kept apart from the protection domain's types so
/// that a hit runs as plain, specialized code: no dictionary, no generic witness calls,
/// no allocation.
///
/// Regions live in slots of a slab (`slots`, with a free list): a slot's number never
/// changes while its region is registered. Reusable regions are also listed, sorted by
/// start address, with their bounds and slot number (`spans`), for interval lookup;
/// `keys` maps an lkey to its slot for ``release(lkey:)``. The regions themselves are
/// held as `AnyObject` and given back to the cache, which knows their type, to be
/// deregistered outside the lock.
struct MRCacheIndex {
    /// One registered region.
    struct Slot {
        var lkey: UInt32 = 0
        var isLive = false
        /// Whether lookups may hand the region out (false once invalidated, or when disabled).
        var isReusable = false
        var references = 0
        var lastUse: UInt64 = 0
        var coverage: Range<UInt> = 0..<0
    }

    /// A reusable region in the interval index.
    struct Span {
        var start: UInt
        var end: UInt
        var slot: Int
    }

    let maxRegions: Int
    let maxBytes: Int
    private var slots: [Slot] = []
    private var regions: [AnyObject?] = []
    private var freeSlots: [Int] = []
    private var keys = LKeyTable()
    /// Reusable regions by start address.
    private var spans: [Span] = []
    /// The longest region ever indexed: no span starting further below an address covers it.
    private var longest: UInt = 0
    private var clock: UInt64 = 0
    /// The number of regions registered.
    private(set) var count = 0
    /// The number of bytes registered.
    private(set) var bytes = 0
    var counters = MRCacheStatistics()

    init(maxRegions: Int, maxBytes: Int) {
        self.maxRegions = maxRegions
        self.maxBytes = maxBytes
    }

    // MARK: The hot path

    /// The reusable region that covers all of `range` (which does not wrap), counted as
    /// a hit and marked used, with a reference taken when `retaining`; `nil` when no
    /// region covers it (nothing is counted then).
    @inline(__always)
    mutating func hit(_ range: MemoryRange, retaining: Bool) -> KeyResolution? {
        let address = range.address
        let end = address &+ UInt(range.length)
        var position = upperBound(of: address)
        while position > 0 {
            position -= 1
            let span = spans[position]
            if address - span.start >= longest { break }
            if span.end >= end {
                clock &+= 1
                counters.hits &+= 1
                slots[span.slot].lastUse = clock
                if retaining { slots[span.slot].references += 1 }
                return KeyResolution(lkey: slots[span.slot].lkey, coverage: span.start..<span.end)
            }
        }
        return nil
    }

    /// Releases one reference on the region with `lkey`. Returns the regions to
    /// deregister: this one when it went idle and may not be reused, or idle ones
    /// evicted when it went idle over the limits.
    @inline(__always)
    mutating func release(lkey: UInt32) -> [AnyObject] {
        guard let slot = keys.slot(of: lkey), slots[slot].references > 0 else {
            preconditionFailure("released lkey 0x\(String(lkey, radix: 16)), which holds no reference in this cache")
        }
        slots[slot].references -= 1
        guard slots[slot].references == 0 else { return [] }
        guard slots[slot].isReusable else { return [remove(slot)] }
        clock &+= 1
        slots[slot].lastUse = clock
        return isOverLimits ? evictOverLimits(sparing: nil) : []
    }

    // MARK: Registration

    /// The coverage a registration for `coverage` gets when it absorbs the idle reusable
    /// regions it overlaps or touches (as long as the union stays within `maxSize`), and
    /// the slots of those regions, for ``add(_:lkey:coverage:retaining:isReusable:absorbing:)``.
    func grown(_ coverage: Range<UInt>, maxSize: UInt) -> (coverage: Range<UInt>, absorbed: [Int]) {
        var coverage = coverage
        var absorbed: [Int] = []
        for (slot, entry) in slots.enumerated() where entry.isLive && entry.isReusable && entry.references == 0
            && entry.coverage.lowerBound <= coverage.upperBound && coverage.lowerBound <= entry.coverage.upperBound {
            let union = min(coverage.lowerBound, entry.coverage.lowerBound)..<max(coverage.upperBound, entry.coverage.upperBound)
            if union.upperBound - union.lowerBound <= maxSize {
                coverage = union
                absorbed.append(slot)
            }
        }
        return (coverage, absorbed)
    }

    /// Records a region just registered over `coverage`, which replaces the `absorbed`
    /// slots, and evicts idle regions over the limits (never this one). Returns the
    /// regions to deregister.
    mutating func add(
        _ region: AnyObject, lkey: UInt32, coverage: Range<UInt>, retaining: Bool, isReusable: Bool, absorbing absorbed: [Int]
    ) -> [AnyObject] {
        counters.registrations += 1
        var dropped = absorbed.map { remove($0) }
        clock &+= 1
        let entry = Slot(lkey: lkey, isLive: true, isReusable: isReusable, references: retaining ? 1 : 0,
                         lastUse: clock, coverage: coverage)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = entry
            regions[slot] = region
        } else {
            slot = slots.count
            slots.append(entry)
            regions.append(region)
        }
        keys.insert(lkey, slot: slot)
        count += 1
        bytes += coverage.count
        if isReusable {
            spans.insert(Span(start: coverage.lowerBound, end: coverage.upperBound, slot: slot),
                         at: upperBound(of: coverage.lowerBound))
            longest = max(longest, UInt(coverage.count))
        }
        if isOverLimits { dropped += evictOverLimits(sparing: slot) }
        return dropped
    }

    // MARK: Invalidation and flushing

    /// Forgets the regions that overlap `range`: idle ones are removed (and returned, to
    /// deregister), ones in use are never handed out again.
    mutating func invalidate(_ range: Range<UInt>) -> [AnyObject] {
        var dropped: [AnyObject] = []
        for slot in slots.indices where slots[slot].isLive && slots[slot].coverage.overlaps(range)
            && (slots[slot].isReusable || slots[slot].references == 0) {
            counters.invalidations += 1
            if slots[slot].references == 0 {
                dropped.append(remove(slot))
            } else {
                unindex(slot)
                slots[slot].isReusable = false
            }
        }
        return dropped
    }

    /// Removes every idle region and returns them, to deregister.
    mutating func flush() -> [AnyObject] {
        var dropped: [AnyObject] = []
        for slot in slots.indices where slots[slot].isLive && slots[slot].references == 0 {
            dropped.append(remove(slot))
        }
        return dropped
    }

    // MARK: Queries

    /// Every region registered.
    var allRegions: [AnyObject] { regions.compactMap { $0 } }

    /// The references held on all regions together.
    var referenceCount: Int { slots.reduce(0) { $0 + ($1.isLive ? $1.references : 0) } }

    /// The slot of the region with `lkey`, if it is registered.
    func slot(lkey: UInt32) -> Slot? { keys.slot(of: lkey).map { slots[$0] } }

    /// The region with `lkey`, if it is registered.
    func region(lkey: UInt32) -> AnyObject? { keys.slot(of: lkey).flatMap { regions[$0] } }

    // MARK: Internals

    private var isOverLimits: Bool { count > maxRegions || bytes > maxBytes }

    /// Evicts idle regions, least recently used first, until the cache is within its
    /// limits. `spared` is a region just handed out, which must outlive the lookup that made it.
    private mutating func evictOverLimits(sparing spared: Int?) -> [AnyObject] {
        var dropped: [AnyObject] = []
        while isOverLimits {
            var victim: Int?
            for slot in slots.indices where slots[slot].isLive && slots[slot].references == 0 && slot != spared
                && victim.map({ slots[slot].lastUse < slots[$0].lastUse }) ?? true {
                victim = slot
            }
            guard let victim else { break }
            counters.evictions += 1
            dropped.append(remove(victim))
        }
        return dropped
    }

    /// The number of spans that start at or before `address`.
    @inline(__always)
    private func upperBound(of address: UInt) -> Int {
        spans.partitionPoint { $0.start > address }
    }

    private mutating func unindex(_ slot: Int) {
        var position = upperBound(of: slots[slot].coverage.lowerBound)
        while position > 0 {
            position -= 1
            if spans[position].slot == slot {
                spans.remove(at: position)
                return
            }
        }
    }

    /// Takes the region out of every structure and returns it, to deregister.
    private mutating func remove(_ slot: Int) -> AnyObject {
        if slots[slot].isReusable { unindex(slot) }
        keys.remove(slots[slot].lkey)
        let region = regions[slot]!
        regions[slot] = nil
        count -= 1
        bytes -= slots[slot].coverage.count
        counters.deregistrations += 1
        slots[slot] = Slot()
        freeSlots.append(slot)
        return region
    }
}
