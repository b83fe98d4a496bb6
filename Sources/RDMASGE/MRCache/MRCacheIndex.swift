import IterExtract

/// The bookkeeping of an ``MRCache`` that changes only under its lock, kept apart from
/// the protection domain so that it runs as plain code: no dictionary, no witness calls
/// (it holds the regions, ``Region``, but never calls them), no allocation on a hit.
///
/// Regions live in slots of a slab (`slots`, with a free list): a slot's number never
/// changes while its region is registered. Reusable regions are also listed, sorted by
/// start address, with their bounds and slot number (`spans`), for interval lookup;
/// `keys` maps an lkey to its slot. What hits and releases change without the lock
/// (references, hits, retirement, last use) is in each slot's ``MRCacheRegionRecord``;
/// the index keeps the ``MRCacheLookaside`` hit table pointing only at live regions and
/// remembers which slot each entry names. The regions themselves are only held, never
/// called, and given back to the cache to be deregistered outside the lock.
struct MRCacheIndex {
    /// A registered region, as the index holds it: only to give it back, never called.
    /// An existential, not a generic parameter: the cache's code is not specialised for
    /// the caller's domain, so every `[Region]` and `Region?` of a generic index made the
    /// runtime look up their metadata, nine lookups and two-thirds of a miss's
    /// bookkeeping instructions (6,300 of them against SoftVerbs' 2,300 for the
    /// registration itself).
    typealias Region = any MemoryRegion
    typealias Slot = MRCacheSlot
    typealias Span = MRCacheSpan

    let maxRegions: Int
    let maxBytes: Int
    /// What lookups and releases use without the lock.
    let lookaside: MRCacheLookaside
    private let records = MRCacheRegionRecords()
    private let keys = LKeyTable()
    private var slots: [Slot] = []
    private var regions: [Region?] = []
    private var freeSlots: [Int] = []
    /// Reusable regions by start address.
    private var spans: [Span] = []
    /// The longest region ever indexed: no span starting further below an address covers it.
    private var longest: UInt = 0
    /// The over-limits flag as last published to the lookaside.
    private var publishedOverLimits = false
    /// The number of regions registered.
    private(set) var count = 0
    /// The number of bytes registered.
    private(set) var bytes = 0
    /// The counters, except hits counted without the lock and not yet folded (``statistics``).
    var counters = MRCacheStatistics()

    init(maxRegions: Int, maxBytes: Int) {
        self.maxRegions = maxRegions
        self.maxBytes = maxBytes
        lookaside = MRCacheLookaside(keys: keys)
    }

    // MARK: Lookups and releases the lookaside could not settle

    /// The reusable region that covers all of `range` (which does not wrap), counted as
    /// a hit and marked used, with a reference taken when `retaining`; `nil` when no
    /// region covers it (nothing is counted then). Points the lookaside at the region.
    mutating func hit(_ range: MemoryRange, retaining: Bool) -> KeyResolution? {
        let address = range.address
        let end = address &+ UInt(range.length)
        var position = upperBound(of: address)
        while position > 0 {
            position -= 1
            let span = spans[position]
            if address - span.start >= longest { break }
            if span.end >= end {
                let record = records[span.slot]
                counters.hits &+= 1 + record.foldHitsIfFull()
                if retaining { record.takeReference(lkey: slots[span.slot].lkey) }
                record.stamp(lookaside.tick())
                publishHit(span.slot, at: address, displacing: false)
                return KeyResolution(lkey: slots[span.slot].lkey, coverage: span.start..<span.end)
            }
        }
        return nil
    }

    /// Releases `count` references on the region with `lkey`. Returns the regions to
    /// deregister: this one when it went idle and may not be reused, or idle ones
    /// evicted when it went idle over the limits.
    private mutating func release(lkey: UInt32, count: Int) -> [Region] {
        guard let slot = keys.slot(of: lkey) else {
            preconditionFailure("released lkey 0x\(String(lkey, radix: 16)), which holds no reference in this cache")
        }
        let record = records[slot]
        record.stamp(lookaside.tick())
        return settle(slot, record.release(lkey: lkey, count: count))
    }

    /// Takes `count` more references on the region with `lkey`, on which the caller
    /// holds one (the lookaside could not find the lkey without the lock).
    func retain(lkey: UInt32, count: Int) {
        guard let slot = keys.slot(of: lkey) else {
            preconditionFailure("retained lkey 0x\(String(lkey, radix: 16)), which holds no reference in this cache")
        }
        records[slot].takeReference(lkey: lkey, count: count)
    }

    /// Takes back a hit the lookaside counted on `record` while its entry changed: the
    /// hit off the statistics and, when `retaining`, the reference, with what a release
    /// does. Returns the regions to deregister.
    mutating func undoStaleHit(_ record: MRCacheRegionRecord, retaining: Bool) -> [Region] {
        // The hit is in the record's field or, if folded since, in the counters: the sum drops by one either way.
        counters.hits &-= 1
        guard retaining else { return [] }
        // The reference keeps the record's region from being closed, so the slot still holds it.
        let slot = record.slot
        return settle(slot, record.release(lkey: slots[slot].lkey))
    }

    /// Finishes a release of `count` references on `lkey` the lookaside could not settle
    /// alone: releases them here when the lkey was not in the lookaside, removes the
    /// region its last release closed, or evicts when it went idle over the limits.
    /// Returns the regions to deregister.
    mutating func finish(_ release: MRCacheLookaside.Release, lkey: UInt32, count: Int = 1) -> [Region] {
        switch release {
        case .released: []
        case .absent: self.release(lkey: lkey, count: count)
        case .closed(let slot): [remove(slot)]
        case .idleOverLimits: evictOverLimits(sparing: nil)
        }
    }

    // MARK: Registration

    /// The coverage a registration for `coverage` gets when it absorbs the idle reusable
    /// regions it overlaps or touches (as long as the union stays within `maxSize`), and
    /// the slots of those regions, for ``add(_:lkey:coverage:retaining:isReusable:absorbing:lookedUp:)``.
    func grown(_ coverage: Range<UInt>, maxSize: UInt) -> (coverage: Range<UInt>, absorbed: [Int]) {
        var coverage = coverage
        var absorbed: [Int] = []
        for (slot, entry) in slots.enumerated() where entry.isLive && entry.isReusable
            && entry.coverage.lowerBound <= coverage.upperBound && coverage.lowerBound <= entry.coverage.upperBound
            && isIdle(slot) {
            let union = min(coverage.lowerBound, entry.coverage.lowerBound)..<max(coverage.upperBound, entry.coverage.upperBound)
            if union.upperBound - union.lowerBound <= maxSize {
                coverage = union
                absorbed.append(slot)
            }
        }
        return (coverage, absorbed)
    }

    /// Records a region just registered over `coverage`, looked up for `address`, which
    /// replaces the `absorbed` slots, and evicts idle regions over the limits (never this
    /// one). Returns the regions to deregister.
    ///
    /// An absorbed region that a lookup without the lock took meanwhile stays, overlapping
    /// the new one.
    mutating func add(
        _ region: Region, lkey: UInt32, coverage: Range<UInt>, retaining: Bool, isReusable: Bool,
        absorbing absorbed: [Int], lookedUp address: UInt
    ) -> [Region] {
        counters.registrations += 1
        var dropped: [Region] = []
        for slot in absorbed where records[slot].tryClose() { dropped.append(remove(slot)) }
        let entry = Slot(lkey: lkey, isLive: true, isReusable: isReusable, coverage: coverage)
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
        records[slot].reset(references: retaining ? 1 : 0, isRetired: !isReusable, lastUse: lookaside.tick())
        keys.insert(lkey, slot: slot, record: records[slot])
        count += 1
        bytes += coverage.count
        if isReusable {
            spans.insert(Span(start: coverage.lowerBound, end: coverage.upperBound, slot: slot),
                         at: upperBound(of: coverage.lowerBound))
            longest = max(longest, UInt(coverage.count))
            publishHit(slot, at: address, displacing: true)
        }
        publishLimits()
        if isOverLimits { dropped += evictOverLimits(sparing: slot) }
        return dropped
    }

    // MARK: Invalidation and flushing

    /// Forgets the regions that overlap `range`: idle ones are removed (and returned, to
    /// deregister), ones in use are retired, never handed out again.
    mutating func invalidate(_ range: Range<UInt>) -> [Region] {
        var dropped: [Region] = []
        for slot in slots.indices where slots[slot].isLive && slots[slot].coverage.overlaps(range) {
            switch records[slot].invalidate() {
            case .closed:
                counters.invalidations += 1
                dropped.append(remove(slot))
            case .retired:
                counters.invalidations += 1
                unindex(slot)
                slots[slot].isReusable = false
                clearEntries(of: slot)
            case .unchanged:
                break
            }
        }
        return dropped
    }

    /// Removes every idle region and returns them, to deregister.
    mutating func flush() -> [Region] {
        var dropped: [Region] = []
        for slot in slots.indices where slots[slot].isLive && records[slot].tryClose() {
            dropped.append(remove(slot))
        }
        return dropped
    }

    // MARK: Queries

    /// Every region registered.
    var allRegions: [Region] { regions.compactMap { $0 } }

    /// The counters, with the hits counted on live regions without the lock.
    var statistics: MRCacheStatistics {
        var statistics = counters
        for slot in slots.indices where slots[slot].isLive { statistics.hits += records[slot].state().hits }
        return statistics
    }

    /// The references held on all regions together.
    var referenceCount: Int {
        slots.indices.reduce(0) { $0 + (slots[$1].isLive ? records[$1].state().references : 0) }
    }

    /// The references held on the region with `lkey`, if it is registered.
    func references(lkey: UInt32) -> Int? { keys.slot(of: lkey).map { records[$0].state().references } }

    /// The addresses the region with `lkey` covers, if it is registered.
    func coverage(lkey: UInt32) -> Range<UInt>? { keys.slot(of: lkey).map { slots[$0].coverage } }

    /// The region with `lkey`, if it is registered.
    func region(lkey: UInt32) -> Region? { keys.slot(of: lkey).flatMap { regions[$0] } }

    // MARK: Internals

    private var isOverLimits: Bool { count > maxRegions || bytes > maxBytes }

    /// Whether the region in `slot` is idle and open. Sequentially consistent, for the
    /// eviction scan (see ``MRCacheLookaside``).
    private func isIdle(_ slot: Int) -> Bool {
        let state = records[slot].stateInTotalOrder()
        return state.references == 0 && !state.isClosed
    }

    /// What follows a release of the region in `slot`: its removal when the releaser
    /// closed it, eviction when it went idle over the limits.
    private mutating func settle(_ slot: Int, _ release: MRCacheRegionRecord.Release) -> [Region] {
        if release.closed { return [remove(slot)] }
        return release.wentIdle && isOverLimits ? evictOverLimits(sparing: nil) : []
    }

    /// Evicts idle regions, least recently used first, until the cache is within its
    /// limits. `spared` is a region just handed out, which must outlive the lookup that made it.
    private mutating func evictOverLimits(sparing spared: Int?) -> [Region] {
        var dropped: [Region] = []
        while isOverLimits {
            var victim: Int?
            var victimUse: UInt64 = 0
            for slot in slots.indices where slots[slot].isLive && slot != spared && isIdle(slot) {
                let lastUse = records[slot].lastUse
                if victim == nil || lastUse < victimUse { (victim, victimUse) = (slot, lastUse) }
            }
            guard let victim else { break }
            // A lookup without the lock may have taken the victim since the scan: look again.
            guard records[victim].tryClose() else { continue }
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

    /// Points the hit-table entry for `address`'s page at the region in `slot`. An entry
    /// that names another region is taken over when `displacing` (a region just
    /// registered), or else after a few conflicts: when more regions are in use than the
    /// table holds, they would only keep displacing one another at every locked hit.
    private mutating func publishHit(_ slot: Int, at address: UInt, displacing: Bool) {
        let entry = lookaside.hitEntry(for: address)
        let owner = lookaside.hitOwner(entry)
        guard owner != slot else { return }
        if owner >= 0 {
            guard displacing || lookaside.countConflict(entry) >= 8 else { return }
            slots[owner].hitEntries &= ~(1 << entry)
        }
        slots[slot].hitEntries |= 1 << entry
        lookaside.publishHit(entry, slot: slot, coverage: slots[slot].coverage, lkey: slots[slot].lkey, record: records[slot])
    }

    /// Empties the hit-table entries that name `slot`.
    private mutating func clearEntries(of slot: Int) {
        var entries = slots[slot].hitEntries
        slots[slot].hitEntries = 0
        while entries != 0 {
            let entry = entries.trailingZeroBitCount
            entries &= entries - 1
            lookaside.publishHit(entry, slot: -1, coverage: 0..<0, lkey: 0, record: nil)
        }
    }

    @inline(__always)
    private mutating func publishLimits() {
        guard isOverLimits != publishedOverLimits else { return }
        publishedOverLimits = isOverLimits
        lookaside.publish(isOverLimits: publishedOverLimits)
    }

    /// Takes the region, whose record is closed, out of every structure and returns it,
    /// to deregister. Its lkey and hit-table entries go before the slot can be reused.
    private mutating func remove(_ slot: Int) -> Region {
        let state = records[slot].state()
        precondition(state.isClosed, "removing a region that is not closed")
        counters.hits += state.hits
        if slots[slot].isReusable { unindex(slot) }
        clearEntries(of: slot)
        keys.remove(slots[slot].lkey)
        let region = regions[slot]!
        regions[slot] = nil
        count -= 1
        bytes -= slots[slot].coverage.count
        counters.deregistrations += 1
        slots[slot] = Slot()
        freeSlots.append(slot)
        publishLimits()
        return region
    }
}

/// One registered region of an ``MRCacheIndex``.
struct MRCacheSlot {
    var lkey: UInt32 = 0
    var isLive = false
    /// Whether lookups may hand the region out (false once invalidated, or when disabled).
    var isReusable = false
    var coverage: Range<UInt> = 0..<0
    /// The hit-table entries that name the region, one bit each.
    var hitEntries: UInt64 = 0
}

/// A reusable region in an ``MRCacheIndex``'s interval index.
struct MRCacheSpan {
    var start: UInt
    var end: UInt
    var slot: Int
}
