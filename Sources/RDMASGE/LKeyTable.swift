/// A map from local keys to small integers (an ``MRCache``'s slot numbers): open
/// addressing with linear probing and a multiplicative (Fibonacci) hash, at most half
/// full, with backward-shift deletion so that no tombstones accumulate.
///
/// A lookup hashes once and usually reads one 8-byte bucket, with no generic or
/// `Hashable` machinery in the way: what ``MRCache/release(lkey:)`` needs on every
/// completed work request.
struct LKeyTable {
    private struct Bucket {
        var lkey: UInt32
        /// The value, or -1 for an empty bucket.
        var slot: Int32

        static let empty = Bucket(lkey: 0, slot: -1)
    }

    private var buckets: [Bucket]
    /// 64 minus log2 of the bucket count: the hash keeps the product's top bits.
    private var shift: UInt64
    /// The number of keys in the table.
    private(set) var count = 0

    init() {
        buckets = Array(repeating: .empty, count: 16)
        shift = 64 - 4
    }

    private var mask: Int { buckets.count - 1 }

    @inline(__always)
    private func home(of lkey: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(lkey) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The value stored for `lkey`, if any.
    @inline(__always)
    func slot(of lkey: UInt32) -> Int? {
        var position = home(of: lkey)
        while true {
            let bucket = buckets[position]
            if bucket.slot < 0 { return nil }
            if bucket.lkey == lkey { return Int(bucket.slot) }
            position = (position + 1) & mask
        }
    }

    /// Stores `slot` for `lkey`, which must not be in the table.
    mutating func insert(_ lkey: UInt32, slot: Int) {
        precondition((0...Int(Int32.max)).contains(slot), "slot \(slot) does not fit a bucket")
        if (count + 1) * 2 > buckets.count { grow() }
        var position = home(of: lkey)
        while buckets[position].slot >= 0 {
            precondition(buckets[position].lkey != lkey, "lkey 0x\(String(lkey, radix: 16)) is in the table already")
            position = (position + 1) & mask
        }
        buckets[position] = Bucket(lkey: lkey, slot: Int32(slot))
        count += 1
    }

    /// Removes `lkey`, which must be in the table, and moves later members of its probe
    /// run back so that every key stays reachable from its home bucket.
    mutating func remove(_ lkey: UInt32) {
        var hole = home(of: lkey)
        while buckets[hole].lkey != lkey || buckets[hole].slot < 0 {
            precondition(buckets[hole].slot >= 0, "lkey 0x\(String(lkey, radix: 16)) is not in the table")
            hole = (hole + 1) & mask
        }
        var next = hole
        while true {
            next = (next + 1) & mask
            let bucket = buckets[next]
            if bucket.slot < 0 { break }
            // The bucket may fill the hole unless its home lies cyclically in (hole, next].
            let home = home(of: bucket.lkey)
            let stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if !stays {
                buckets[hole] = bucket
                hole = next
            }
        }
        buckets[hole] = .empty
        count -= 1
    }

    private mutating func grow() {
        let old = buckets
        buckets = Array(repeating: .empty, count: old.count * 2)
        shift -= 1
        count = 0
        for bucket in old where bucket.slot >= 0 { insert(bucket.lkey, slot: Int(bucket.slot)) }
    }
}
