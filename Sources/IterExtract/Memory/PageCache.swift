/// A sparse map from page index to folio: the page cache of one file, and the
/// memory behind an XARRAY iterator.
///
/// A folio of 2^order pages occupies that many consecutive indices starting at a
/// multiple of its page count (a multi-index entry); indices with no folio are
/// holes. Lookups are O(log n) in the number of folios; walks from one folio to
/// the next are O(1). Mutating a cache while an iterator over it is in use is a
/// programmer error, as truncating a page cache under I/O is in the kernel.
public final class PageCache: @unchecked Sendable {
    /// One folio and the first index it occupies.
    public struct Entry: Sendable, Equatable {
        /// The first page index the folio occupies.
        public var index: Int
        /// The folio.
        public var folio: Folio
        /// One past the last page index the folio occupies.
        @inlinable public var endIndex: Int { index + folio.pageCount }
    }

    @usableFromInline var entries: [Entry] = []

    /// Creates an empty page cache.
    public init() {}

    /// The number of folios in the cache.
    public var folioCount: Int { entries.count }

    /// All entries in index order.
    public var allEntries: [Entry] { entries }

    /// One past the last page index a folio may occupy: every byte position of the
    /// cache is then an `Int` (2^51 with 4 KiB pages).
    public static let indexLimit = (Int.max >> pageShift) + 1

    /// Puts `folio` at `index`.
    ///
    /// - Throws: ``MemoryError/indexOutOfRange(_:)`` when `index` is negative or the
    ///   folio would reach past ``indexLimit``;
    ///   ``MemoryError/misalignedIndex(index:order:)`` when `index` is not a
    ///   multiple of the folio's page count; ``MemoryError/indexOccupied(_:)`` when
    ///   any index the folio would occupy is taken.
    public func insert(_ folio: Folio, at index: Int) throws(MemoryError) {
        guard index >= 0, index <= Self.indexLimit - folio.pageCount else { throw .indexOutOfRange(index) }
        guard index % folio.pageCount == 0 else { throw .misalignedIndex(index: index, order: folio.order) }
        let position = firstPosition(endingAfter: index)
        if position < entries.count, entries[position].index < index + folio.pageCount {
            throw .indexOccupied(max(index, entries[position].index))
        }
        entries.insert(Entry(index: index, folio: folio), at: position)
    }

    /// Removes and returns the folio that occupies `index`, if any.
    @discardableResult
    public func remove(at index: Int) -> Entry? {
        guard let position = position(containing: index) else { return nil }
        return entries.remove(at: position)
    }

    /// The entry whose folio occupies `index`, or `nil` for a hole.
    public func entry(containing index: Int) -> Entry? {
        position(containing: index).map { entries[$0] }
    }

    /// The entries that occupy any index in `range`, in order (holes skipped).
    public func entries(overlapping range: Range<Int>) -> ArraySlice<Entry> {
        let first = firstPosition(endingAfter: range.lowerBound)
        var last = first
        while last < entries.count, entries[last].index < range.upperBound { last += 1 }
        return entries[first..<last]
    }

    /// The position in `entries` of the first entry that ends after `index`.
    @usableFromInline
    func firstPosition(endingAfter index: Int) -> Int {
        entries.partitionPoint { $0.endIndex > index }
    }

    @usableFromInline
    func position(containing index: Int) -> Int? {
        let position = firstPosition(endingAfter: index)
        guard position < entries.count, entries[position].index <= index else { return nil }
        return position
    }
}
