import IterExtract

/// One entry of a scatter table: `length` bytes at `offset` from the start of
/// `page` (the offset may exceed a page: the bytes continue in the following
/// frames), plus the DMA address and length once the table is mapped.
///
/// An entry may instead be a *chain link* (it holds no data and leads to the next
/// chunk of the table) and may carry the *end* marker (the last entry). Mirrors the
/// kernel's `struct scatterlist`.
public struct ScatterEntry: Hashable, Sendable, CustomStringConvertible {
    /// The first page of the bytes.
    public var page: Page
    /// The offset of the first byte from the start of ``page``.
    public var offset: Int
    /// The number of bytes.
    public var length: Int
    /// The device address of the bytes once mapped.
    public var dmaAddress: UInt64
    /// The number of bytes at ``dmaAddress`` once mapped (coalescing can make it
    /// longer than ``length``).
    public var dmaLength: Int
    /// Whether this slot is a chain link rather than data.
    public internal(set) var isChainLink: Bool
    /// Whether this is the last entry of the table.
    public internal(set) var isEnd: Bool
    /// Whether every page of the entry holds one pin taken for it, which
    /// ``ScatterTable/releasePins(ledger:)`` gives back.
    public internal(set) var isPinned: Bool

    /// A data entry.
    public init(page: Page, offset: Int, length: Int) {
        self.init(page: page, offset: offset, length: length, isPinned: false)
    }

    /// A data entry, pinned or not: every field written at once.
    init(page: Page, offset: Int, length: Int, isPinned: Bool) {
        precondition(offset >= 0 && length >= 0, "a scatter entry has a non-negative offset and length")
        self.page = page
        self.offset = offset
        self.length = length
        self.dmaAddress = 0
        self.dmaLength = 0
        self.isChainLink = false
        self.isEnd = false
        self.isPinned = isPinned
    }

    /// An empty slot (page 0, no bytes), as a freshly allocated table holds.
    static let zeroed = ScatterEntry(page: Page(frame: 0), offset: 0, length: 0)

    /// The address of the first byte in the direct view.
    @inlinable
    public var address: UInt { page.address &+ UInt(offset) }

    /// The frames the bytes occupy, in order (none for an empty entry).
    public var pages: LazyMapSequence<Range<UInt>, Page> {
        let first = address >> UInt(pageShift)
        let end = length == 0 ? first : (address &+ UInt(length) &- 1) >> UInt(pageShift) &+ 1
        return (first..<end).lazy.map(Page.init(frame:))
    }

    /// The page, offset and length, then the DMA address and length once mapped and the
    /// pinned and END marks; `chain →` for a chain link.
    public var description: String {
        if isChainLink { return "chain →" }
        var text = "\(page)+\(offset) len \(length)"
        if dmaLength > 0 { text += " dma 0x\(String(dmaAddress, radix: 16)) len \(dmaLength)" }
        if isPinned { text += " pinned" }
        if isEnd { text += " END" }
        return text
    }
}
