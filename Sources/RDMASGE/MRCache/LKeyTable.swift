import Synchronization

/// A map from local keys to an ``MRCache``'s slots and their ``MRCacheRegionRecord``s:
/// open addressing with linear probing and a multiplicative (Fibonacci) hash, at most
/// half full, with backward-shift deletion so that no tombstones accumulate.
///
/// Changed only under the cache's lock, but read without it too: a release looks its
/// lkey up here on every completed work request. A bucket is two atomic words: the key
/// (the lkey in the high half, the slot plus one in the low half, zero when empty) and
/// the address of the slot's record. A reader sees a whole key or none; it may pair it
/// with another bucket's record while a deletion shifts entries, which it detects
/// because a record names its own slot (``MRCacheRegionRecord/slot``), and it may miss a
/// key that is being shifted. Either way the caller asks again under the lock. A reader
/// never finds a wrong slot: a key word only ever holds a pair that was inserted and
/// not yet removed, and a caller that holds a reference on its lkey's region knows that
/// no other live region has the lkey.
///
/// Growing allocates a table twice the size and publishes it; the old table is never
/// changed again and stays allocated until the cache goes, because a reader may still
/// be probing it (all old tables together are smaller than the current one). A reader
/// that loaded an old table finds its lkey there or not at all: the registration it
/// holds a reference from happened before its load, so the table it loaded was current
/// then. A lookup hashes once and usually reads one bucket, with no generic or
/// `Hashable` machinery in the way.
final class LKeyTable: @unchecked Sendable {
    /// The current table's address (64-byte aligned) with its shift in the low six bits:
    /// 64 minus log2 of the bucket count, as the hash keeps the product's top bits. The
    /// table's word 0 holds the shift too, word 1 is padding, the buckets follow.
    private let current: Atomic<UInt>
    /// Every table allocated, the current one last (changed under the lock).
    @exclusivity(unchecked) private var tables: [UnsafeMutablePointer<Atomic<UInt64>>] = []
    /// The current table and its shift, for the writer (under the lock).
    @exclusivity(unchecked) private var table: UnsafeMutablePointer<Atomic<UInt64>>
    @exclusivity(unchecked) private var shift = 64 - 4
    /// The number of keys in the table (changed under the lock).
    @exclusivity(unchecked) private var count = 0

    init() {
        table = Self.allocate(shift: shift)
        tables.append(table)
        current = Atomic(UInt(bitPattern: table) | UInt(shift))
    }

    deinit {
        for table in tables {
            let words = Self.wordCount(shift: Int(table[0].load(ordering: .relaxed)))
            table.deinitialize(count: words)
            UnsafeMutableRawPointer(table).deallocate()
        }
    }

    /// The slot of `lkey`, if it is in the table (under the lock).
    func slot(of lkey: UInt32) -> Int? { entry(of: lkey)?.slot }

    /// The slot and record of `lkey`, without the lock: `nil` when `lkey` is not in the
    /// table, or was being moved. The record is checked to be the slot's.
    @inline(__always)
    func entry(of lkey: UInt32) -> (slot: Int, record: MRCacheRegionRecord)? {
        let current = current.load(ordering: .acquiring)
        let buckets = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: current & ~63).unsafelyUnwrapped + 2
        let shift = UInt64(current & 63)
        let mask = Int(truncatingIfNeeded: ~(UInt64.max << (64 &- shift)))
        var position = Self.home(of: lkey, shift: shift)
        // At most one pass over the table, however writers move entries meanwhile.
        var probes = mask
        while true {
            let key = buckets[position &<< 1].load(ordering: .acquiring)
            if key == 0 { return nil }
            if UInt32(truncatingIfNeeded: key >> 32) == lkey {
                let slot = Int(truncatingIfNeeded: key & 0xFFFF_FFFF) &- 1
                guard let record = MRCacheRegionRecord(bitPattern: buckets[position &<< 1 | 1].load(ordering: .acquiring)),
                      record.slot == slot
                else { return nil }
                return (slot, record)
            }
            if probes == 0 { return nil }
            probes &-= 1
            position = (position &+ 1) & mask
        }
    }

    /// Stores `slot` and its record for `lkey`, which must not be in the table.
    func insert(_ lkey: UInt32, slot: Int, record: MRCacheRegionRecord) {
        precondition((0..<Int(UInt32.max)).contains(slot), "slot \(slot) does not fit a bucket")
        if (count + 1) * 2 > capacity { grow() }
        let mask = capacity - 1
        var position = Self.home(of: lkey, shift: UInt64(shift))
        while true {
            let key = table[2 + 2 * position].load(ordering: .relaxed)
            if key == 0 { break }
            precondition(UInt32(truncatingIfNeeded: key >> 32) != lkey, "lkey 0x\(String(lkey, radix: 16)) is in the table already")
            position = (position + 1) & mask
        }
        table[3 + 2 * position].store(record.bitPattern, ordering: .releasing)
        table[2 + 2 * position].store(UInt64(lkey) << 32 | UInt64(slot + 1), ordering: .releasing)
        count += 1
    }

    /// Removes `lkey`, which must be in the table, and moves later members of its probe
    /// run back so that every key stays reachable from its home bucket.
    func remove(_ lkey: UInt32) {
        let mask = capacity - 1
        var hole = Self.home(of: lkey, shift: UInt64(shift))
        while true {
            let key = table[2 + 2 * hole].load(ordering: .relaxed)
            precondition(key != 0, "lkey 0x\(String(lkey, radix: 16)) is not in the table")
            if UInt32(truncatingIfNeeded: key >> 32) == lkey { break }
            hole = (hole + 1) & mask
        }
        var next = hole
        while true {
            next = (next + 1) & mask
            let key = table[2 + 2 * next].load(ordering: .relaxed)
            if key == 0 { break }
            // The bucket may fill the hole unless its home lies cyclically in (hole, next].
            let home = Self.home(of: UInt32(truncatingIfNeeded: key >> 32), shift: UInt64(shift))
            let stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if !stays {
                table[3 + 2 * hole].store(table[3 + 2 * next].load(ordering: .relaxed), ordering: .releasing)
                table[2 + 2 * hole].store(key, ordering: .releasing)
                hole = next
            }
        }
        table[2 + 2 * hole].store(0, ordering: .releasing)
        count -= 1
    }

    // MARK: Internals

    /// The number of buckets of the current table (under the lock).
    private var capacity: Int { 1 << (64 - shift) }

    @inline(__always)
    private static func home(of lkey: UInt32, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (UInt64(lkey) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    private static func wordCount(shift: Int) -> Int { 2 + 2 * (1 << (64 - shift)) }

    private static func allocate(shift: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        let words = wordCount(shift: shift)
        let table = UnsafeMutableRawPointer.allocate(byteCount: words * 8, alignment: 64)
            .bindMemory(to: Atomic<UInt64>.self, capacity: words)
        table.initialize(to: Atomic(UInt64(shift)))
        for word in 1..<words { (table + word).initialize(to: Atomic(0)) }
        return table
    }

    /// Moves every entry into a table twice the size and publishes it.
    private func grow() {
        let (old, oldCapacity) = (table, capacity)
        shift -= 1
        table = Self.allocate(shift: shift)
        let mask = capacity - 1
        for index in 0..<oldCapacity {
            let key = old[2 + 2 * index].load(ordering: .relaxed)
            guard key != 0 else { continue }
            var position = Self.home(of: UInt32(truncatingIfNeeded: key >> 32), shift: UInt64(shift))
            while table[2 + 2 * position].load(ordering: .relaxed) != 0 { position = (position + 1) & mask }
            table[3 + 2 * position].store(old[3 + 2 * index].load(ordering: .relaxed), ordering: .relaxed)
            table[2 + 2 * position].store(key, ordering: .relaxed)
        }
        tables.append(table)
        current.store(UInt(bitPattern: table) | UInt(shift), ordering: .releasing)
    }
}
