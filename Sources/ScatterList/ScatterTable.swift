import IterExtract

/// A scatter table: an ordered list of ``ScatterEntry`` values stored in chained
/// chunks. Mirrors the kernel's `struct sg_table` (`sg_alloc_table`,
/// `sg_alloc_table_chained`).
///
/// Entries live in chunks of ``chunkCapacity`` slots. The last slot of every chunk
/// is kept for the chain link: once another chunk follows, that slot links to it, so
/// the table grows by adding a chunk and never moves an entry. Reserving capacity up
/// front (``init(chunkCapacity:reservingCapacity:)``, ``reserveCapacity(_:)``) means
/// appending, and extraction into the table, do not allocate.
///
/// ``count`` is the number of data entries (the kernel's `orig_nents`);
/// ``mappedCount`` is the number of DMA segments after ``map(using:)`` (the
/// kernel's `nents`), which coalescing can make smaller.
///
/// The table is a random-access collection of its data entries; iterating it walks
/// the chunks through their chain links. A table is not thread-safe.
public final class ScatterTable: RandomAccessCollection, CustomStringConvertible {
    /// Slots per chunk unless told otherwise: 128, as a 4 KiB kernel chunk holds.
    public static let defaultChunkCapacity = 128

    /// Slots per chunk, including the one kept for the chain link.
    public let chunkCapacity: Int
    /// The chunks, each `chunkCapacity` initialised slots. A table is not thread-safe,
    /// so the dynamic exclusivity check a class's stored property costs buys nothing
    /// here; extraction reads this on every call.
    @exclusivity(unchecked) var chunks: [UnsafeMutablePointer<ScatterEntry>] = []
    /// The state extraction touches for every entry. It lives behind a pointer so that
    /// the hot path pays no dynamic exclusivity check, which a class's stored
    /// properties would cost on every access.
    struct AppendState {
        var count = 0
        /// Where the next appended entry goes, valid while `room > 0`.
        var slot: UnsafeMutablePointer<ScatterEntry>?
        /// Data slots left from `slot` to the end of its chunk.
        var room = 0
        /// The last data entry's slot, while there is one.
        var last: UnsafeMutablePointer<ScatterEntry>?
        /// The number of entries marked ``ScatterEntry/isPinned``: with none, releasing
        /// pins and emptying the table skip the pass that looks for them.
        var pinnedCount = 0
        var isMapped = false
    }
    let state: UnsafeMutablePointer<AppendState> = {
        let state = UnsafeMutablePointer<AppendState>.allocate(capacity: 1)
        state.initialize(to: AppendState())
        return state
    }()

    /// The number of data entries. The kernel's `orig_nents`.
    public private(set) var count: Int {
        get { state.pointee.count }
        set {
            state.pointee.count = newValue
            state.pointee.room = 0
            state.pointee.last = newValue > 0 ? slot(newValue - 1) : nil
        }
    }
    /// The data index of the entry that carries the END marker.
    var endMarkIndex: Int?
    /// The number of DMA segments while mapped, else 0. The kernel's `nents`.
    public internal(set) var mappedCount = 0
    /// The mapper that mapped the table, while it is mapped.
    var dmaMapper: (any DMAMapper)? {
        didSet { state.pointee.isMapped = dmaMapper != nil }
    }

    /// An empty table with room for `capacity` entries before it must allocate.
    public init(chunkCapacity: Int = ScatterTable.defaultChunkCapacity, reservingCapacity capacity: Int = 0) {
        precondition(chunkCapacity >= 2, "a chunk needs at least one data slot and the chain slot")
        precondition(capacity >= 0, "a capacity is not negative")
        self.chunkCapacity = chunkCapacity
        reserveCapacity(capacity)
    }

    /// A table of `entryCount` zeroed entries with END on the last, to be filled in
    /// place through the subscript. Mirrors the kernel's `sg_alloc_table`.
    public convenience init(entryCount: Int, chunkCapacity: Int = ScatterTable.defaultChunkCapacity) {
        precondition(entryCount > 0, "sg_alloc_table needs at least one entry")
        self.init(chunkCapacity: chunkCapacity, reservingCapacity: entryCount)
        count = entryCount
        markEnd()
    }

    deinit {
        if let dmaMapper { dmaMapper.unmap(self) }
        for chunk in chunks {
            chunk.deinitialize(count: chunkCapacity)
            chunk.deallocate()
        }
        state.deallocate()
    }

    /// Data slots per chunk: every chunk keeps its last slot for the chain link.
    var dataSlotsPerChunk: Int { chunkCapacity - 1 }

    /// The number of data entries the allocated chunks hold.
    public var capacity: Int { chunks.count * dataSlotsPerChunk }

    /// The number of chunks allocated.
    public var chunkCount: Int { chunks.count }

    /// Whether the table is DMA-mapped.
    public var isMapped: Bool { state.pointee.isMapped }

    /// Allocates chunks until the table holds at least `capacity` data entries,
    /// turning the spare last slot of the previous last chunk into a chain link.
    public func reserveCapacity(_ capacity: Int) {
        while self.capacity < capacity {
            let chunk = UnsafeMutablePointer<ScatterEntry>.allocate(capacity: chunkCapacity)
            chunk.initialize(repeating: .zeroed, count: chunkCapacity)
            if let last = chunks.last { last[dataSlotsPerChunk].isChainLink = true }
            chunks.append(chunk)
        }
    }

    // MARK: Data entries

    /// The position of the first data entry: 0.
    public var startIndex: Int { 0 }
    /// The position after the last data entry: the number of data entries. Chain links
    /// take no position.
    public var endIndex: Int { count }

    /// Calls `body` with the slot of each data entry in `range`, chunk by chunk (no
    /// division per entry: the bulk passes of extraction and release use this).
    @inline(__always)
    func forEachSlot<E: Error>(in range: Range<Int>, _ body: (UnsafeMutablePointer<ScatterEntry>) throws(E) -> Void) throws(E) {
        if range.isEmpty { return }
        var (chunk, first) = range.lowerBound.quotientAndRemainder(dividingBy: dataSlotsPerChunk)
        var left = range.count
        while left > 0 {
            let base = chunks[chunk]
            let n = Swift.min(left, dataSlotsPerChunk - first)
            for i in first..<first + n { try body(base + i) }
            left -= n
            chunk += 1
            first = 0
        }
    }

    /// The last data entry's slot, when there is one.
    var lastSlot: UnsafeMutablePointer<ScatterEntry>? { state.pointee.last }

    /// The slot that holds data entry `index`.
    func slot(_ index: Int) -> UnsafeMutablePointer<ScatterEntry> {
        let (chunk, slot) = index.quotientAndRemainder(dividingBy: dataSlotsPerChunk)
        return chunks[chunk] + slot
    }

    /// Data entry `index`. Setting replaces the page, offset, length and DMA fields;
    /// the END and pin markers belong to the table and are kept.
    public subscript(index: Int) -> ScatterEntry {
        get {
            precondition(index >= 0 && index < count, "entry \(index) is outside a table of \(count)")
            return slot(index).pointee
        }
        set {
            precondition(index >= 0 && index < count, "entry \(index) is outside a table of \(count)")
            precondition(!newValue.isChainLink, "a chain link is not a data entry")
            let entry = slot(index)
            let (isEnd, isPinned) = (entry.pointee.isEnd, entry.pointee.isPinned)
            precondition(!isPinned || (newValue.page, newValue.offset, newValue.length)
                            == (entry.pointee.page, entry.pointee.offset, entry.pointee.length),
                         "the bytes of a pinned entry cannot be replaced")
            entry.pointee = newValue
            entry.pointee.isEnd = isEnd
            entry.pointee.isPinned = isPinned
        }
    }

    /// Appends a data entry after the last one, adding a chunk when the table is full.
    /// The entry's END and pin markers are cleared. Mirrors the kernel's `sg_set_page`
    /// on the next free slot.
    public func append(_ entry: ScatterEntry) {
        precondition(!entry.isChainLink, "a chain link is not a data entry")
        appendEntry(page: entry.page, offset: entry.offset, length: entry.length, pinned: false)
        slot(count - 1).pointee.dmaAddress = entry.dmaAddress
        slot(count - 1).pointee.dmaLength = entry.dmaLength
    }

    /// Appends an entry of `length` bytes at `offset` from `page`.
    func appendEntry(page: Page, offset: Int, length: Int, pinned: Bool) {
        precondition(!isMapped, "a mapped table cannot grow; unmap it first")
        if state.pointee.room == 0 {
            if count == capacity { reserveCapacity(count + 1) }
            let index = count
            state.pointee.slot = slot(index)
            state.pointee.room = dataSlotsPerChunk - index % dataSlotsPerChunk
        }
        let entry = state.pointee.slot!
        entry.pointee = ScatterEntry(page: page, offset: offset, length: length, isPinned: pinned)
        if pinned { state.pointee.pinnedCount += 1 }
        state.pointee.count += 1
        state.pointee.slot = entry + 1
        state.pointee.room -= 1
        state.pointee.last = entry
    }

    /// Removes the entries from `index` on. Their slots are not cleared: nothing reads
    /// a slot past ``count``, and appending writes every field of the slot it fills,
    /// so emptying a table costs no pass over it unless entries hold pins.
    func removeEntries(from index: Int) {
        precondition(!isMapped, "a mapped table cannot shrink; unmap it first")
        if state.pointee.pinnedCount > 0 {
            var pinned = 0
            forEachSlot(in: index..<count) { if $0.pointee.isPinned { pinned += 1 } }
            state.pointee.pinnedCount -= pinned
        }
        if let mark = endMarkIndex, mark >= index { endMarkIndex = nil }
        count = index
    }

    /// Removes every entry and keeps the chunks, so the table can be filled again
    /// without allocating. The pins of pinned entries must have been released.
    public func removeAll() {
        precondition(state.pointee.pinnedCount == 0, "release the pins of a table before emptying it")
        removeEntries(from: 0)
    }

    /// The total number of bytes the data entries describe.
    public var byteCount: Int { reduce(0) { $0 + $1.length } }

    /// The number of entries and chunks, and how many entries are DMA-mapped.
    public var description: String {
        "ScatterTable(\(count) entries, \(chunks.count) chunks of \(chunkCapacity)\(isMapped ? ", \(mappedCount) mapped" : ""))"
    }

    // MARK: Iteration

    /// Walks the data entries chunk by chunk, stepping over chain links.
    public struct Iterator: IteratorProtocol {
        let table: ScatterTable
        var position: SlotPosition?
        var remaining: Int

        /// The next data entry, or `nil` after the last one.
        public mutating func next() -> ScatterEntry? {
            guard remaining > 0, let current = position else { return nil }
            remaining -= 1
            let entry = table[current]
            position = table.slotPosition(after: current)
            return entry
        }
    }

    /// An iterator over all ``count`` data entries (the kernel's `for_each_sg` over
    /// `orig_nents`), whether or not an END marker comes earlier.
    public func makeIterator() -> Iterator {
        Iterator(table: self, position: count > 0 ? SlotPosition(chunk: 0, slot: 0) : nil, remaining: count)
    }
}
