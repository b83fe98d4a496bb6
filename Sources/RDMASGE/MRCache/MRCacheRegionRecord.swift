import Synchronization

/// The part of one ``MRCache`` region that hits and releases change without the cache's
/// lock: its reference count, the hits counted on it since the lock last folded them
/// into the statistics, whether it may be handed out, and when it was last used.
///
/// A record is a pointer into memory that ``MRCacheRegionRecords`` never moves or frees
/// while the cache lives, so a thread may act on a record it found in the lookaside even
/// after the region there was removed: the state word then says so (``State/isClosed``),
/// or the lookaside entry it came from has changed (see ``MRCacheLookaside``).
///
/// Words: 0 the state, 1 the last use on the cache's clock, 2 the slot number (fixed
/// when the record is made); the rest of the 64 bytes is padding, so that threads
/// hitting different regions do not share a cache line.
struct MRCacheRegionRecord {
    /// A region's state in one word, changed by atomic read-modify-write (stored outright
    /// only when a closed record's slot takes a new region).
    ///
    /// Bits 0–31 count references, bits 32–61 count hits taken without the lock, bit 62
    /// says the region is retired (invalidated, or in a disabled cache: no lookup may
    /// hand it out), bit 63 says it is closed (being removed: nothing may change the
    /// word any more until the slot is reused).
    struct State {
        var rawValue: UInt64

        static let oneHit: UInt64 = 1 << 32
        static let retiredBit: UInt64 = 1 << 62
        static let closedBit: UInt64 = 1 << 63
        /// The most hits a lookup without the lock counts on a record: beyond, lookups
        /// take the lock, which folds the count into the statistics. Half the field, so
        /// the field never overflows.
        static let hitLimit: UInt64 = 1 << 29

        init(rawValue: UInt64) { self.rawValue = rawValue }

        init(references: Int, isRetired: Bool) {
            precondition((0...Int(UInt32.max)).contains(references), "\(references) references do not fit a region record's 32-bit count")
            rawValue = UInt64(references) | (isRetired ? Self.retiredBit : 0)
        }

        var references: Int { Int(truncatingIfNeeded: rawValue & 0xFFFF_FFFF) }
        var hits: Int { Int(truncatingIfNeeded: (rawValue >> 32) & 0x3FFF_FFFF) }
        var isRetired: Bool { rawValue & Self.retiredBit != 0 }
        var isClosed: Bool { rawValue & Self.closedBit != 0 }

        /// Whether a lookup without the lock may count a hit here (and take a reference
        /// when `retaining`): open, not retired, and room in both counters.
        @inline(__always)
        func admitsHit(retaining: Bool) -> Bool {
            // Both flags lie above the hit field, so one comparison checks all three.
            rawValue >> 32 < Self.hitLimit && !(retaining && UInt32(truncatingIfNeeded: rawValue) == .max)
        }
    }

    /// What ``release(lkey:)`` did.
    struct Release {
        /// The last reference went.
        var wentIdle: Bool
        /// It went and the region was retired: the releaser closed it and must remove it.
        var closed: Bool
    }

    /// What ``invalidate()`` did.
    enum Invalidation {
        /// The region was idle and is closed now: remove it.
        case closed
        /// The region is in use and retired now: it goes with its last release.
        case retired
        /// Nothing: the region is closed already (its last releaser removes it) or was retired before.
        case unchanged
    }

    static let stride = 8

    let words: UnsafeMutablePointer<Atomic<UInt64>>

    init(_ words: UnsafeMutablePointer<Atomic<UInt64>>) { self.words = words }

    init?(bitPattern: UInt64) {
        guard let words = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: UInt(truncatingIfNeeded: bitPattern)) else { return nil }
        self.words = words
    }

    var bitPattern: UInt64 { UInt64(UInt(bitPattern: words)) }

    /// The slot whose region this record describes.
    var slot: Int { Int(truncatingIfNeeded: words[2].load(ordering: .relaxed)) }

    /// The state now.
    func state() -> State { State(rawValue: words[0].load(ordering: .acquiring)) }

    /// The state now, in the sequentially consistent order that an eviction scan needs
    /// (see ``MRCacheLookaside``).
    func stateInTotalOrder() -> State { State(rawValue: words[0].load(ordering: .sequentiallyConsistent)) }

    /// The region's last use on the cache's clock.
    var lastUse: UInt64 { words[1].load(ordering: .relaxed) }

    /// Marks the region used at `time`. Relaxed: the LRU order is a hint.
    @inline(__always)
    func stamp(_ time: UInt64) { words[1].store(time, ordering: .relaxed) }

    // MARK: Without the lock

    /// Counts a hit, and takes a reference when `retaining`, unless the region is closed,
    /// retired or its counters are full. The caller must then check that the record
    /// still describes the region it looked up (the lookaside entry did not change).
    @inline(__always)
    func tryHit(retaining: Bool) -> Bool {
        let increment = State.oneHit &+ (retaining ? 1 : 0)
        var current = words[0].load(ordering: .relaxed)
        while State(rawValue: current).admitsHit(retaining: retaining) {
            let (exchanged, original) = words[0].weakCompareExchange(
                expected: current, desired: current &+ increment, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Releases `count` references of a region with `lkey`; the last reference on a
    /// retired region also closes it. Sequentially consistent, like the cache's
    /// over-limits flag, so that a region going idle while a writer evicts is seen by
    /// one of the two.
    @inline(__always)
    func release(lkey: UInt32, count: Int = 1) -> Release {
        var current = words[0].load(ordering: .relaxed)
        while true {
            let state = State(rawValue: current)
            guard state.references >= count, count > 0, !state.isClosed else {
                preconditionFailure("released lkey 0x\(String(lkey, radix: 16)) \(count) times, more than it holds references in this cache")
            }
            let closes = state.references == count && state.isRetired
            let desired = (current &- UInt64(count)) | (closes ? State.closedBit : 0)
            let (exchanged, original) = words[0].weakCompareExchange(
                expected: current, desired: desired, ordering: .sequentiallyConsistent)
            if exchanged { return Release(wentIdle: state.references == count, closed: closes) }
            current = original
        }
    }

    // MARK: Under the cache's lock

    /// Makes the record describe a new region of its slot.
    func reset(references: Int, isRetired: Bool, lastUse: UInt64) {
        words[1].store(lastUse, ordering: .relaxed)
        words[0].store(State(references: references, isRetired: isRetired).rawValue, ordering: .releasing)
    }

    /// Takes `count` references: under the lock on a region found there (it is
    /// reusable, so nothing else may close or retire it meanwhile), or, with or without
    /// the lock, on a region the caller holds a reference on (so it cannot be closed).
    @inline(__always)
    func takeReference(lkey: UInt32, count: Int = 1) {
        let original = words[0].wrappingAdd(UInt64(count), ordering: .acquiringAndReleasing).oldValue
        precondition(UInt64(UInt32(truncatingIfNeeded: original)) + UInt64(count) <= UInt64(UInt32.max),
                     "too many references on lkey 0x\(String(lkey, radix: 16))")
    }

    /// Moves the hits counted on the record out of it, when lookups without the lock can
    /// count no more here, and returns how many.
    func foldHitsIfFull() -> Int {
        var current = words[0].load(ordering: .relaxed)
        while State(rawValue: current).hits >= Int(State.hitLimit) {
            let hits = UInt64(State(rawValue: current).hits)
            let (exchanged, original) = words[0].weakCompareExchange(
                expected: current, desired: current &- hits << 32, ordering: .acquiringAndReleasing)
            if exchanged { return Int(hits) }
            current = original
        }
        return 0
    }

    /// Closes the region if it is idle and open; a closed record is never changed again
    /// until its slot is reused, and no lookup takes it.
    func tryClose() -> Bool {
        var current = words[0].load(ordering: .sequentiallyConsistent)
        while State(rawValue: current).references == 0 && !State(rawValue: current).isClosed {
            let (exchanged, original) = words[0].weakCompareExchange(
                expected: current, desired: current | State.closedBit, ordering: .sequentiallyConsistent)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Closes the region if idle, else retires it, in one exchange so that a release
    /// racing with it either leaves the region idle here or sees it retired.
    func invalidate() -> Invalidation {
        var current = words[0].load(ordering: .sequentiallyConsistent)
        while true {
            let state = State(rawValue: current)
            let desired: UInt64
            let outcome: Invalidation
            if state.isClosed || (state.references > 0 && state.isRetired) {
                return .unchanged
            } else if state.references == 0 {
                (desired, outcome) = (current | State.closedBit, .closed)
            } else {
                (desired, outcome) = (current | State.retiredBit, .retired)
            }
            let (exchanged, original) = words[0].weakCompareExchange(
                expected: current, desired: desired, ordering: .sequentiallyConsistent)
            if exchanged { return outcome }
            current = original
        }
    }
}
