import IterExtract

/// A piece of a scatter entry that lies in one page, as the mapping iterator
/// offers it.
public struct MappedPiece {
    /// The page that holds the bytes.
    public var page: Page
    /// The offset of the first byte within ``page``.
    public var offset: Int
    /// The bytes, in the direct view.
    public var bytes: UnsafeMutableRawBufferPointer
}

/// Walks the bytes of a scatter table page by page, from the first entry and
/// following ``ScatterTable/next(after:)`` (so it stops at END), without copying.
/// Entry offsets larger than a page are followed into the right page.
///
/// Mirrors the kernel's `sg_miter_start` / `sg_miter_next` / `sg_miter_skip`.
/// Creating and advancing the iterator does not allocate.
public struct MappingIterator: IteratorProtocol, Sequence {
    private let table: ScatterTable
    private var position: ScatterTable.SlotPosition?
    /// Bytes of the current entry already offered or skipped.
    private var consumed = 0

    /// An iterator over the bytes of `table`, after skipping the first `skip` bytes.
    public init(_ table: ScatterTable, skipping skip: Int = 0) {
        precondition(skip >= 0, "a skip is not negative")
        self.table = table
        self.position = table.firstPosition
        self.skip(skip)
    }

    /// The next piece, of at most `maxLength` bytes and never crossing a page, or
    /// `nil` when the table's bytes are exhausted.
    public mutating func next(maxLength: Int) -> MappedPiece? {
        precondition(maxLength > 0, "a piece holds at least one byte")
        while let current = position {
            let entry = table[current]
            if consumed < entry.length {
                let address = entry.address &+ UInt(consumed)
                let offset = Int(address & pageMask)
                let length = Swift.min(entry.length - consumed, pageSize - offset, maxLength)
                consumed += length
                return MappedPiece(
                    page: Page(frame: address >> UInt(pageShift)), offset: offset,
                    bytes: UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: address), count: length))
            }
            position = table.next(after: current)
            consumed = 0
        }
        return nil
    }

    /// The next piece: the rest of the current page of the current entry.
    public mutating func next() -> MappedPiece? { next(maxLength: .max) }

    /// Skips `n` bytes without mapping them; returns the bytes skipped (fewer when the
    /// table ends first). Mirrors the kernel's `sg_miter_skip`.
    @discardableResult
    public mutating func skip(_ n: Int) -> Int {
        precondition(n >= 0, "a skip is not negative")
        var left = n
        while left > 0, let current = position {
            let step = Swift.min(left, table[current].length - consumed)
            consumed += step
            left -= step
            if left > 0 {
                position = table.next(after: current)
                consumed = 0
            }
        }
        return n - left
    }
}
