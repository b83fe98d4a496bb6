import IterExtract

extension ScatterTable {
    /// Gives back the pins of every pinned entry (one per page of the entry) and
    /// clears their ``ScatterEntry/isPinned`` marker; entries without pins are left
    /// alone, so calling it twice releases nothing the second time. Use the ledger
    /// the extraction used. The kernel's `unpin_user_page` loop over a table filled
    /// by `extract_iter_to_sg`.
    public func releasePins(ledger: PinLedger = .shared) {
        unpinEntries(from: 0, to: count, ledger: ledger)
    }

    /// Pins the pages of the entries from `start` to the end, in one ledger call.
    ///
    /// - Throws: ``ScatterListError/iterator(_:)`` when the ledger refuses; nothing is
    ///   pinned then.
    func pinEntries(from start: Int, ledger: PinLedger) throws(ScatterListError) {
        var pageCount = 0
        forEachSlot(in: start..<count) { pageCount += $0.pointee.pages.count }
        do {
            try ledger.pin((start..<count).lazy.flatMap { self.slot($0).pointee.pages }, count: pageCount)
        } catch {
            throw .iterator(error)
        }
    }

    /// Unpins the pinned entries in `start..<end`, in one ledger call.
    func unpinEntries(from start: Int, to end: Int, ledger: PinLedger) {
        if state.pointee.pinnedCount == 0 { return }
        var pageCount = 0
        forEachSlot(in: start..<end) { if $0.pointee.isPinned { pageCount += $0.pointee.pages.count } }
        if pageCount > 0 {
            let pinned = (start..<end).lazy.filter { self.slot($0).pointee.isPinned }
            ledger.unpin(pinned.flatMap { self.slot($0).pointee.pages }, count: pageCount)
        }
        var cleared = 0
        forEachSlot(in: start..<end) { slot in
            if slot.pointee.isPinned { cleared += 1 }
            slot.pointee.isPinned = false
        }
        state.pointee.pinnedCount -= cleared
    }
}
