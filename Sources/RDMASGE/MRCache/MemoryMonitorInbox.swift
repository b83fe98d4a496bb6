#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// What the ``MemoryMonitor`` tells one ``MRCache``: a flag word the cache's hit path
/// loads, and a bounded queue of address ranges whose memory went away.
///
/// One producer, the monitor thread, which never blocks and never allocates here, and
/// one consumer, the cache under its lock. The flag word holds three bits:
/// - ``busy``: the monitor is reading events and may be about to post some. Set before
///   each `read(2)` of the userfaultfd, cleared after the posts; a lookup waits it out.
/// - ``pending``: ranges were posted since the cache last drained.
/// - ``overflowed``: a range did not fit the queue; the cache must invalidate everything.
///
/// The monitor posts only ranges that meet the cache's *watched span* (from the lowest
/// address the cache ever watched to the highest end): every process-wide event reaches
/// every inbox, and without the filter one cache's unmaps would fill the others' queues
/// until they overflow and forget all their regions. The cache widens the span before
/// it watches a range (``widenWatchedSpan(_:)``); an unmap of that range comes later.
///
/// Words: 0 the flags; 8 the tail (ranges posted, the monitor's), 16 the head (ranges
/// drained, the cache's), 24 and 25 the watched span (the cache's), each on a cache line
/// of its own; from 32 the ring of ``capacity`` ranges, two words each (start, end).
/// Every word is an atomic, so the sanitizer sees no plain shared memory.
///
/// A value type over one allocation, like ``MRCacheLookaside``: the cache deallocates it
/// once the monitor no longer lists it.
struct MemoryMonitorInbox: @unchecked Sendable {
    static let busy: UInt64 = 1
    static let pending: UInt64 = 2
    static let overflowed: UInt64 = 4
    /// Ranges the queue holds before it overflows. Events come one per `munmap`,
    /// `madvise` or `mremap` of watched memory, and the cache drains at its next lookup.
    static let capacity = 64
    private static let tail = 8
    private static let head = 16
    private static let spanStart = 24
    private static let spanEnd = 25
    private static let ring = 32
    private static let wordCount = ring + 2 * capacity

    private let words: UnsafeMutablePointer<Atomic<UInt64>>

    /// Allocates an empty inbox with no flag set and an empty watched span.
    init() {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Self.wordCount * 8, alignment: 64)
        words = raw.bindMemory(to: Atomic<UInt64>.self, capacity: Self.wordCount)
        for word in 0..<Self.wordCount { (words + word).initialize(to: Atomic(0)) }
        words[Self.spanStart].store(.max, ordering: .relaxed)
    }

    /// The inbox at `address` (``address``), as the monitor's subscriber table holds it.
    init(address: UInt) {
        words = UnsafeMutablePointer(bitPattern: address)!
    }

    /// The address of the allocation, for the monitor's subscriber table.
    var address: UInt { UInt(bitPattern: words) }

    /// Frees the inbox, once the monitor no longer lists it (the cache's `deinit`).
    func deallocate() {
        words.deinitialize(count: Self.wordCount)
        UnsafeMutableRawPointer(words).deallocate()
    }

    // MARK: The cache

    /// Whether any flag is set: the monitor is reading events, or ranges wait. One
    /// acquiring load, for the hit path: it orders the ring's words after it.
    @inline(__always)
    var hasNews: Bool { words[0].load(ordering: .acquiring) != 0 }

    /// Whether the monitor is reading events and may be about to post some.
    var isBusy: Bool { words[0].load(ordering: .acquiring) & Self.busy != 0 }

    /// Waits, yielding the processor, until the monitor has posted the events of the
    /// read it is in (a non-blocking `read(2)` and a few stores: never long).
    func waitWhileBusy() {
        while isBusy { sched_yield() }
    }

    /// Takes the ranges posted since the last drain, passing each to `body`, oldest
    /// first. Returns whether the queue overflowed since (ranges were lost: the caller
    /// must forget every region). Under the cache's lock: one consumer at a time.
    func drain(_ body: (Range<UInt>) -> Void) -> Bool {
        // Clearing first: a range posted after this exchange sets `pending` again.
        let flags = words[0].bitwiseAnd(~(Self.pending | Self.overflowed), ordering: .acquiringAndReleasing).oldValue
        let head = words[Self.head].load(ordering: .relaxed)
        let tail = words[Self.tail].load(ordering: .acquiring)
        var position = head
        while position != tail {
            let entry = Self.ring + 2 * Int(position % UInt64(Self.capacity))
            let start = UInt(truncatingIfNeeded: words[entry].load(ordering: .relaxed))
            let end = UInt(truncatingIfNeeded: words[entry + 1].load(ordering: .relaxed))
            body(start..<end)
            position &+= 1
        }
        // Releasing: the monitor reuses these entries only after it sees the new head.
        words[Self.head].store(tail, ordering: .releasing)
        return flags & Self.overflowed != 0
    }

    /// Widens the watched span to cover `range`, before the monitor watches it. Under the
    /// cache's lock (one writer); sequentially consistent, so that the monitor, reading an
    /// event of this range (which the kernel queues after the watch), loads the new span.
    func widenWatchedSpan(_ range: Range<UInt>) {
        if UInt64(range.lowerBound) < words[Self.spanStart].load(ordering: .relaxed) {
            words[Self.spanStart].store(UInt64(range.lowerBound), ordering: .sequentiallyConsistent)
        }
        if UInt64(range.upperBound) > words[Self.spanEnd].load(ordering: .relaxed) {
            words[Self.spanEnd].store(UInt64(range.upperBound), ordering: .sequentiallyConsistent)
        }
    }

    // MARK: The monitor

    /// Sets ``busy``, before the monitor reads the userfaultfd. Sequentially consistent:
    /// see ``MemoryMonitor`` for why a lookup after an unmap cannot miss it.
    func markBusy() {
        words[0].bitwiseOr(Self.busy, ordering: .sequentiallyConsistent)
    }

    /// Posts `range`, or marks the inbox overflowed when the queue is full, and sets
    /// ``pending``; ignores a range outside the watched span, which no region can overlap.
    func post(_ range: Range<UInt>) {
        let start = UInt64(range.lowerBound), end = UInt64(range.upperBound)
        guard start < words[Self.spanEnd].load(ordering: .sequentiallyConsistent),
              end > words[Self.spanStart].load(ordering: .sequentiallyConsistent) else { return }
        let tail = words[Self.tail].load(ordering: .relaxed)
        let head = words[Self.head].load(ordering: .acquiring)
        if tail &- head >= UInt64(Self.capacity) {
            words[0].bitwiseOr(Self.overflowed, ordering: .releasing)
            return
        }
        let entry = Self.ring + 2 * Int(tail % UInt64(Self.capacity))
        words[entry].store(start, ordering: .relaxed)
        words[entry + 1].store(end, ordering: .relaxed)
        words[Self.tail].store(tail &+ 1, ordering: .releasing)
        words[0].bitwiseOr(Self.pending, ordering: .releasing)
    }

    /// Clears ``busy`` once the events read are posted. Releasing, so that a lookup that
    /// sees the bit clear sees the posts.
    func clearBusy() {
        words[0].bitwiseAnd(~Self.busy, ordering: .releasing)
    }
}
