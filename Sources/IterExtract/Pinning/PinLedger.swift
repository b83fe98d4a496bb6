import Synchronization
import Locking

/// The record of every pin taken on user pages.
///
/// Extraction from a user-backed iterator (UBUF, IOVEC) pins the pages it lists
/// and records the pins here; the consumer releases them, exactly once, when the
/// I/O is done. Unpinning a page that is not pinned is a programmer error and
/// traps. Tests make a ledger of their own and check ``isEmpty`` at the end.
///
/// A ledger in ``Mode/exact`` mode keeps a count per page and catches a release of
/// the wrong page; one in ``Mode/counting`` mode keeps only the total, so pinning
/// costs one atomic add per call whatever the number of pages (for hot paths).
/// A ledger may have a limit, like `RLIMIT_MEMLOCK`: pinning beyond it fails.
public final class PinLedger: Sendable {
    /// How much the ledger records.
    public enum Mode: Sendable {
        /// A pin count per page.
        case exact
        /// The total number of pinned pages only.
        case counting
    }

    /// The ledger extraction uses unless told otherwise: exact in debug builds,
    /// counting in release builds.
    public static let shared = PinLedger()

    /// What the ledger records.
    public let mode: Mode
    /// The most pages that may be pinned at once.
    public let limit: Int
    @usableFromInline let perPage = LockedValue<[UInt: Int]>([:])
    @usableFromInline let total = Atomic<Int>(0)

    /// Creates a ledger.
    public init(mode: Mode? = nil, limit: Int = .max) {
        precondition(limit >= 0, "a pin limit is not negative")
        #if DEBUG
        self.mode = mode ?? .exact
        #else
        self.mode = mode ?? .counting
        #endif
        self.limit = limit
    }

    /// The number of pins held (a page pinned twice counts twice).
    public var pinnedPageCount: Int { total.load(ordering: .acquiring) }

    /// Whether no pin is held.
    public var isEmpty: Bool { pinnedPageCount == 0 }

    /// The pins held on `page`. Needs an ``Mode/exact`` ledger.
    public func pinCount(of page: Page) -> Int {
        precondition(mode == .exact, "per-page pin counts need an exact ledger")
        return perPage.withLock { $0[page.frame] ?? 0 }
    }

    /// Records a pin on each of `pages`, all or none.
    ///
    /// - Throws: ``IOIteratorError/pinLimitExceeded(requested:available:)`` when the
    ///   pins would exceed ``limit``; nothing is recorded then.
    @inlinable
    public func pin<C: Collection<Page>>(_ pages: C) throws(IOIteratorError) {
        try pin(pages, count: pages.count)
    }

    /// Records a pin on each of the `count` pages of `pages`, all or none: one call
    /// for a whole extraction, so that a counting ledger does one atomic add however
    /// many pieces the pages came in.
    ///
    /// - Throws: ``IOIteratorError/pinLimitExceeded(requested:available:)``; nothing
    ///   is recorded then.
    @inlinable
    public func pin<S: Sequence<Page>>(_ pages: S, count: Int) throws(IOIteratorError) {
        if count == 0 { return }
        if mode == .counting {
            try addPins(count)
        } else {
            try pinExactly(pages, count: count)
        }
    }

    @usableFromInline
    func addPins(_ n: Int) throws(IOIteratorError) {
        var current = total.load(ordering: .relaxed)
        while true {
            guard n <= limit - current else { throw .pinLimitExceeded(requested: n, available: limit - current) }
            let (exchanged, original) = total.compareExchange(
                expected: current, desired: current + n, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }

    @usableFromInline
    func pinExactly<S: Sequence<Page>>(_ pages: S, count n: Int) throws(IOIteratorError) {
        try perPage.withLock { (table) throws(IOIteratorError) in
            let current = total.load(ordering: .relaxed)
            guard n <= limit - current else { throw .pinLimitExceeded(requested: n, available: limit - current) }
            var seen = 0
            for page in pages {
                table[page.frame, default: 0] += 1
                seen += 1
            }
            precondition(seen == n, "pin(_:count:) was told \(n) pages but given \(seen)")
            total.add(n, ordering: .releasing)
        }
    }

    /// Releases one pin on each of `pages`. Releasing a page that holds no pin traps.
    @inlinable
    public func unpin<C: Collection<Page>>(_ pages: C) {
        unpin(pages, count: pages.count)
    }

    /// Releases one pin on each of the `count` pages of `pages`, in one call.
    @inlinable
    public func unpin<S: Sequence<Page>>(_ pages: S, count: Int) {
        if count == 0 { return }
        if mode == .counting {
            removePins(count)
        } else {
            unpinExactly(pages, count: count)
        }
    }

    @usableFromInline
    func removePins(_ n: Int) {
        let before = total.subtract(n, ordering: .acquiringAndReleasing).oldValue
        precondition(before >= n, "unpinned \(n) pages, but the ledger holds only \(before) pins")
    }

    @usableFromInline
    func unpinExactly<S: Sequence<Page>>(_ pages: S, count n: Int) {
        perPage.withLock { table in
            var seen = 0
            for page in pages {
                guard let pins = table[page.frame] else {
                    preconditionFailure("unpinned \(page), which holds no pin in this ledger")
                }
                table[page.frame] = pins == 1 ? nil : pins - 1
                seen += 1
            }
            precondition(seen == n, "unpin(_:count:) was told \(n) pages but given \(seen)")
            total.subtract(n, ordering: .releasing)
        }
    }
}
