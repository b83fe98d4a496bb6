import IterExtract

/// Extracts `iterator` to pages, call by call, printing each page with its offset,
/// length and retention, then releases exactly what was taken.
func printPageExtraction(_ iterator: inout IOIterator, maxPages: Int, maxSize: Int) throws(IOIteratorError) {
    let ledger = PinLedger(mode: .exact)
    print("call  page              offset  length  retention")
    var pages: [Page] = []
    pages.reserveCapacity(maxPages)
    var allPages: [Page] = []
    var calls = 0
    var bytes = 0
    defer { iterator.release(extractedPages: allPages, ledger: ledger) }
    while iterator.count > 0 {
        pages.removeAll(keepingCapacity: true)
        let result = try iterator.extractPages(into: &pages, maxPages: maxPages, maxSize: maxSize, ledger: ledger)
        if result.byteCount == 0 { break }
        calls += 1
        var left = result.byteCount
        var offset = result.firstPageOffset
        for page in pages {
            let length = min(left, pageSize - offset)
            let frame = hex(page.frame).padding(toLength: 16, withPad: " ", startingAt: 0)
            print("\(pad(calls, 4))  \(frame)  \(pad(offset, 6))  \(pad(length, 6))  \(iterator.extractionWillPin ? "pinned" : "listed")")
            left -= length
            offset = 0
        }
        bytes += result.byteCount
        allPages += pages
    }
    print("total: \(bytes) bytes in \(allPages.count) pages over \(calls) calls; pins held: \(ledger.pinnedPageCount)")
}
