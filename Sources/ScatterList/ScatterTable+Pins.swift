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

    /// Pins the pages of the entries from `start` to the end, entry by entry.
    ///
    /// - Throws: ``ScatterListError/iterator(_:)`` when the ledger refuses; the pins
    ///   this call took are released then.
    func pinEntries(from start: Int, ledger: PinLedger) throws(ScatterListError) {
        for index in start..<count {
            do {
                try ledger.pin(slot(index).pointee.pages)
            } catch {
                unpinEntries(from: start, to: index, ledger: ledger)
                throw .iterator(error)
            }
        }
    }

    /// Unpins the pinned entries in `start..<end`.
    func unpinEntries(from start: Int, to end: Int, ledger: PinLedger) {
        for index in start..<end where slot(index).pointee.isPinned {
            ledger.unpin(slot(index).pointee.pages)
            slot(index).pointee.isPinned = false
        }
    }
}
