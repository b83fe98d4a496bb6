import IterExtract
import Synchronization

/// The lock-free front of an ``MRCache``, through which a hit and a release usually
/// finish with one compare-and-exchange on the region's ``MRCacheRegionRecord`` and no lock.
///
/// - The hit table, direct-mapped and small, maps the page of a looked-up address to a
///   reusable region that covered it (start, end, lkey, record); a lookup whose range the
///   entry covers counts its hit, and takes its reference, on the record.
/// - A release finds its record through the ``LKeyTable`` of every registered region,
///   readable without the lock.
/// - The clock orders last uses for LRU eviction; the over-limits flag tells a release
///   that leaves a region idle whether it must take the lock to evict.
///
/// Hit-table entries are written only under the cache's lock, each behind a sequence
/// number (odd while it is being written); readers load the sequence, the fields, and
/// the sequence again. Every field is an atomic, so the sanitizer sees no plain shared
/// memory. A lookup the table cannot settle goes to the locked path, which may fill the entry.
///
/// Races, and why each is safe:
/// - *Eviction, flush or invalidation against a hit.* A writer removes a region only
///   after closing its record with an exchange that succeeds from "no references, open";
///   a hit takes its reference with an exchange that fails on a closed or retired record.
///   Whichever exchange comes first wins: a region a hit holds is never closed, and a hit
///   on a closed region goes to the lock, where the region is gone from the index.
/// - *Invalidation of a region in use.* The writer sets the retired bit by exchange; every
///   later hit fails on it, so no lookup that starts after ``MRCache/invalidate(_:)``
///   returns gets the region. A release racing with it either leaves the region idle
///   first (the writer then closes it) or sees the bit (and closes it itself).
/// - *Slot reuse (ABA).* Before a removed region's slot is reused, the writer empties every
///   hit-table entry that names its record, bumping the entries' sequence numbers. A hit
///   checks its entry's sequence after its exchange: the reuse's state store is a release
///   and the exchange an acquire, so a hit that counted on the next region of the slot
///   sees the bump. It then hands nothing out: under the lock it takes its hit off the
///   statistics and releases its reference like any other
///   (``MRCacheIndex/undoStaleHit(_:retaining:)``), and looks up again. No generation
///   counter is needed, so none can wrap.
/// - *A release against removal.* A releaser holds a reference, so its region cannot be
///   closed and its lkey names no other live region: the slot the lkey table gives is
///   the region's (removal takes the lkey out first, and the registration the reference
///   came from happened before the release). The last release of a retired region closes
///   it in the same exchange and removes it under the lock; writers skip closed records,
///   so exactly one thread removes a region.
/// - *A release against eviction over the limits.* The releaser's exchange and its load
///   of the over-limits flag are sequentially consistent, as are the writer's store of the
///   flag (before it scans) and its loads of the records while scanning: either the
///   writer sees the region idle and may evict it, or the releaser sees the flag and
///   evicts under the lock. The cache never stays over its limits with an idle region
///   that a release could have evicted.
/// - *Statistics.* A hit without the lock counts itself in its record's hit field, in the
///   same exchange as its reference; the lock folds the field into the statistics when the
///   region is removed (or the field is half full), and ``MRCache/statistics`` adds the
///   fields of live regions, so the count is exact.
/// - *LRU order.* Locked operations advance the clock by two and stamp it; a hit or release
///   without the lock stamps the clock plus one without advancing it. Order among locked
///   operations, and between them and lock-free ones, is kept; regions used without the
///   lock between the same two locked operations tie (eviction takes the lowest slot), and
///   a stamp racing with the region's removal may land on the slot's next region. The
///   order is a hint for choosing a victim; it never decides whether a region is in use.
///
/// A value type over one allocation, so that the cache holds the table's address itself
/// and a hit's chain of dependent loads is one shorter; the cache deallocates it.
struct MRCacheLookaside: @unchecked Sendable {
    /// At most 64: the index keeps the entries that name a region as one bit each.
    static let hitEntryCount = 64
    private static let hitStride = 8
    /// Where the clock is; the over-limits flag follows a cache line later.
    private static let clock = hitEntryCount * hitStride
    private static let overLimits = clock + 8
    private static let wordCount = overLimits + 8

    /// What a lookup in the hit table found.
    enum Hit {
        /// A region covers the range: the hit is counted and, if asked, the reference taken.
        case found(KeyResolution)
        /// No usable entry: look under the lock.
        case absent
        /// The entry changed while the hit was being counted on `record`: undo it under the lock.
        case stale(MRCacheRegionRecord)
    }

    /// What a release without the lock did.
    enum Release {
        /// The reference is released; nothing else to do.
        case released
        /// The lkey was not found (or was being moved): release under the lock.
        case absent
        /// The last reference of a retired region went: the releaser closed it and removes `slot`.
        case closed(slot: Int)
        /// The region went idle while the cache is over its limits: evict under the lock.
        case idleOverLimits
    }

    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let keys: LKeyTable

    /// Allocates an empty hit table, with the clock at zero and the cache within its
    /// limits, for a cache whose regions `keys` lists.
    init(keys: LKeyTable) {
        self.keys = keys
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Self.wordCount * 8, alignment: 64)
        words = raw.bindMemory(to: Atomic<UInt64>.self, capacity: Self.wordCount)
        for word in 0..<Self.wordCount { (words + word).initialize(to: Atomic(0)) }
    }

    /// Frees the hit table, once no thread can use it (the cache's `deinit`).
    func deallocate() {
        words.deinitialize(count: Self.wordCount)
        UnsafeMutableRawPointer(words).deallocate()
    }

    // MARK: Without the lock

    /// Counts a hit on the region the hit table holds for `address`'s page, taking a
    /// reference when `retaining`, when that region covers `address..<end`.
    @inline(__always)
    func hit(address: UInt, end: UInt, retaining: Bool) -> Hit {
        let entry = words + hitEntry(for: address) * Self.hitStride
        let sequence = entry[0].load(ordering: .acquiring)
        let start = UInt(truncatingIfNeeded: entry[1].load(ordering: .acquiring))
        let regionEnd = UInt(truncatingIfNeeded: entry[2].load(ordering: .acquiring))
        let lkey = UInt32(truncatingIfNeeded: entry[3].load(ordering: .acquiring))
        guard sequence & 1 == 0, start <= address, end <= regionEnd,
              let record = MRCacheRegionRecord(bitPattern: entry[4].load(ordering: .acquiring)),
              record.tryHit(retaining: retaining)
        else { return .absent }
        record.stamp(words[Self.clock].load(ordering: .relaxed) &+ 1)
        // The exchange acquired, so this load cannot be answered from before it.
        guard entry[0].load(ordering: .relaxed) == sequence else { return .stale(record) }
        return .found(KeyResolution(lkey: lkey, coverage: start..<regionEnd))
    }

    /// Releases `count` references on the region with `lkey`.
    @inline(__always)
    func release(lkey: UInt32, count: Int = 1) -> Release {
        guard let (slot, record) = keys.entry(of: lkey) else { return .absent }
        // Stamped while the reference is still held, so the stamp lands on this region.
        record.stamp(words[Self.clock].load(ordering: .relaxed) &+ 1)
        let release = record.release(lkey: lkey, count: count)
        if release.closed { return .closed(slot: slot) }
        if release.wentIdle && words[Self.overLimits].load(ordering: .sequentiallyConsistent) != 0 { return .idleOverLimits }
        return .released
    }

    /// Takes `count` more references on the region with `lkey`, on which the caller
    /// holds one (so the region stays, and the lkey names no other). Returns `false`
    /// when the lkey was not found (it was being moved): take them under the lock.
    @inline(__always)
    func retain(lkey: UInt32, count: Int) -> Bool {
        guard let (_, record) = keys.entry(of: lkey) else { return false }
        record.takeReference(lkey: lkey, count: count)
        return true
    }

    // MARK: Under the cache's lock

    /// The hit-table entry for the page of `address`.
    @inline(__always)
    func hitEntry(for address: UInt) -> Int {
        Int(truncatingIfNeeded: (UInt64(address >> UInt(pageShift)) &* 0x9E37_79B9_7F4A_7C15)
            >> (64 - Self.hitEntryCount.trailingZeroBitCount))
    }

    /// The slot whose region hit-table entry `index` names, or -1. Words 5 and 6 of an
    /// entry are the writer's own: the slot plus one, and a count of conflicts.
    @inline(__always)
    func hitOwner(_ index: Int) -> Int { Int(truncatingIfNeeded: words[index * Self.hitStride + 5].load(ordering: .relaxed)) &- 1 }

    /// Counts a locked hit that found another region than entry `index` names, and
    /// returns the count since the entry was last written.
    @inline(__always)
    func countConflict(_ index: Int) -> UInt64 {
        let count = words[index * Self.hitStride + 6].load(ordering: .relaxed) &+ 1
        words[index * Self.hitStride + 6].store(count, ordering: .relaxed)
        return count
    }

    /// Points hit-table entry `index` at the region in `slot` (with its coverage, lkey
    /// and record), or empties it (`slot` -1, `record` nil).
    func publishHit(_ index: Int, slot: Int, coverage: Range<UInt>, lkey: UInt32, record: MRCacheRegionRecord?) {
        let entry = words + index * Self.hitStride
        entry[5].store(UInt64(truncatingIfNeeded: slot &+ 1), ordering: .relaxed)
        entry[6].store(0, ordering: .relaxed)
        // Odd while writing; the fields' release stores keep this store before them.
        let sequence = entry[0].load(ordering: .relaxed)
        entry[0].store(sequence &+ 1, ordering: .relaxed)
        entry[1].store(UInt64(coverage.lowerBound), ordering: .releasing)
        entry[2].store(UInt64(coverage.upperBound), ordering: .releasing)
        entry[3].store(UInt64(lkey), ordering: .releasing)
        entry[4].store(record?.bitPattern ?? 0, ordering: .releasing)
        entry[0].store(sequence &+ 2, ordering: .releasing)
    }

    /// Advances the clock for a locked operation and returns the new time.
    func tick() -> UInt64 {
        let time = words[Self.clock].load(ordering: .relaxed) &+ 2
        words[Self.clock].store(time, ordering: .relaxed)
        return time
    }

    /// Tells releases whether the cache is over its limits (stored before any eviction scan).
    func publish(isOverLimits: Bool) {
        words[Self.overLimits].store(isOverLimits ? 1 : 0, ordering: .sequentiallyConsistent)
    }
}
