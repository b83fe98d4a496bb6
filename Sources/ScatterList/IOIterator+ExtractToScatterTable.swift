import IterExtract

extension IOIterator {
    /// Describes up to `maxSize` bytes of the iterator in at most `maxEntries` new
    /// entries appended to `table`, and advances past the bytes described.
    ///
    /// Entries already in the table are never read or changed, and END is not moved
    /// (call ``ScatterTable/markEnd()`` when done). Returns the bytes described; the
    /// iterator advances by exactly that many. `maxSize` is clamped to ``count`` and
    /// ``maxReadWriteCount``; when it or `maxEntries` is 0 the call adds nothing and
    /// returns 0. The call stops early, without error, when `maxEntries` entries were
    /// added.
    ///
    /// With ``ScatterGranularity/kernel`` granularity, per kind:
    /// - UBUF, IOVEC: one entry per page, across segments; every page is **pinned**
    ///   in `ledger` and its entry marked ``ScatterEntry/isPinned`` (give the pins back
    ///   with ``ScatterTable/releasePins(ledger:)``).
    /// - KVEC: one entry per page, across segments, each as long as its part of the
    ///   page; no retention.
    /// - BVEC: one entry per element (it may span pages); no retention.
    /// - FOLIOQ, XARRAY: one entry per folio; XARRAY skips holes and continues at the
    ///   start of the next folio; no retention.
    ///
    /// An entry's offset is normalised to the page that holds its first byte. When
    /// the table is full, a chunk is added; with `maxEntries` within the table's free
    /// capacity the call does not allocate.
    ///
    /// Mirrors the kernel's `extract_iter_to_sg`. Unlike the kernel, a failing call
    /// leaves no trace.
    ///
    /// - Throws: on error the iterator, the table and the ledger are unchanged:
    ///   ``ScatterListError/notExtractable(_:)`` for DISCARD and PIPE;
    ///   ``ScatterListError/maxSegmentBelowPage(_:)`` for a merged granularity below a page;
    ///   ``ScatterListError/iterator(_:)`` wrapping
    ///   ``IterExtract/IOIteratorError/pinLimitExceeded(requested:available:)`` or
    ///   ``IterExtract/IOIteratorError/addressOverflow(address:length:)``.
    @discardableResult
    public mutating func extract(
        maxSize: Int, into table: ScatterTable, maxEntries: Int,
        granularity: ScatterGranularity = .kernel, ledger: PinLedger = .shared
    ) throws(ScatterListError) -> Int {
        precondition(maxSize >= 0, "maxSize is not negative")
        precondition(maxEntries >= 0, "maxEntries is not negative")
        let limit = Swift.min(maxSize, count, maxReadWriteCount)
        if limit == 0 { return 0 }
        guard kind != .discard, kind != .pipe else { throw .notExtractable(kind) }
        if maxEntries == 0 { return 0 }
        var maxSegment: Int?
        if case .merged(let size) = granularity { maxSegment = try pageMultipleMaxSegment(size) }
        let start = table.count
        let builder = ScatterEntryBuilder(
            table: table, firstEntry: start, endEntry: start + maxEntries, maxSegment: maxSegment,
            translatesAddresses: kind == .ubuf || kind == .iovec || kind == .kvec, pins: extractionWillPin)
        let bytes: Int
        do {
            if builder.maxSegment == nil, kind == .bvec || kind == .folioq || kind == .xarray {
                bytes = walk(maxBytes: limit, holes: .skip, builder.addWhole)
            } else if isUserBacked {
                bytes = try walk(maxBytes: limit, holes: .skip) { (range) throws(ScatterListError) -> Int in
                    guard !range.address.addingReportingOverflow(UInt(range.length)).overflow else {
                        throw .iterator(.addressOverflow(address: range.address, length: range.length))
                    }
                    return builder.addPages(of: range)
                }
            } else {
                bytes = walk(maxBytes: limit, holes: .skip, builder.addPages)
            }
            if builder.pins { try table.pinEntries(from: start, ledger: ledger) }
        } catch {
            table.removeEntries(from: start)
            throw error
        }
        advance(past: bytes, holes: .skip)
        return bytes
    }
}

/// Appends the entries of one extraction call to a table, within its entry budget.
struct ScatterEntryBuilder {
    let table: ScatterTable
    /// The first entry this call adds; earlier ones are never merged into.
    let firstEntry: Int
    /// One past the last entry this call may add.
    let endEntry: Int
    /// Merged granularity: the most bytes an entry may grow to.
    let maxSegment: Int?
    /// Whether addresses are virtual (UBUF, IOVEC, KVEC) and need translating to pages.
    let translatesAddresses: Bool
    /// Whether the entries are marked as holding pins.
    let pins: Bool

    /// Adds `range` as one entry; returns the bytes taken (none when the budget is spent).
    func addWhole(_ range: MemoryRange) -> Int {
        guard table.count < endEntry else { return 0 }
        table.appendEntry(page: Page(frame: range.address >> UInt(pageShift)), offset: range.pageOffset,
                          length: range.length, pinned: pins)
        return range.length
    }

    /// Adds `range` page by page, merging into the previous entry of this call when
    /// the granularity allows; returns the bytes taken before the budget ran out.
    func addPages(of range: MemoryRange) -> Int {
        if let maxSegment, !translatesAddresses || AddressTranslation.isIdentity {
            return addRun(range, maxSegment: maxSegment)
        }
        var taken = 0
        while taken < range.length {
            let address = range.address &+ UInt(taken)
            let offset = Int(address & pageMask)
            let piece = Swift.min(range.length - taken, pageSize - offset)
            let page = translatesAddresses
                ? AddressTranslation.page(containing: address) : Page(frame: address >> UInt(pageShift))
            if let maxSegment, table.count > firstEntry, let last = table.lastSlot,
               last.pointee.address &+ UInt(last.pointee.length) == page.address &+ UInt(offset),
               last.pointee.length + piece <= maxSegment {
                last.pointee.length += piece
                taken += piece
                continue
            }
            guard table.count < endEntry else { break }
            table.appendEntry(page: page, offset: offset, length: piece, pinned: pins)
            taken += piece
        }
        return taken
    }

    /// Merged granularity over memory whose pages are its own frames: the range is
    /// frame-contiguous, so it is added in entries of up to `maxSegment` bytes at once,
    /// the first continuing the previous entry of this call when they touch.
    private func addRun(_ range: MemoryRange, maxSegment: Int) -> Int {
        var taken = 0
        if table.count > firstEntry, let last = table.lastSlot,
           last.pointee.address &+ UInt(last.pointee.length) == range.address, last.pointee.length < maxSegment {
            taken = Swift.min(range.length, maxSegment - last.pointee.length)
            last.pointee.length += taken
        }
        while taken < range.length, table.count < endEntry {
            let address = range.address &+ UInt(taken)
            let length = Swift.min(range.length - taken, maxSegment)
            table.appendEntry(page: Page(frame: address >> UInt(pageShift)), offset: Int(address & pageMask),
                              length: length, pinned: pins)
            taken += length
        }
        return taken
    }
}
