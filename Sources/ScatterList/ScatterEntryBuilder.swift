import IterExtract

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
        let isDirect = !translatesAddresses
            || AddressTranslation.isDirect(from: range.address, to: range.address &+ UInt(range.length))
        if let maxSegment, isDirect {
            return addRun(range, maxSegment: maxSegment)
        }
        var taken = 0
        while taken < range.length {
            let address = range.address &+ UInt(taken)
            let offset = Int(address & pageMask)
            let piece = Swift.min(range.length - taken, pageSize - offset)
            let page = isDirect ? Page(frame: address >> UInt(pageShift)) : AddressTranslation.page(containing: address)
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
