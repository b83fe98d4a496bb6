import IterExtract
import Testing

@Suite("README")
struct ReadmeExampleTests {
    @Test("the README's usage example works as printed")
    func usage() throws {
        let ledger = PinLedger(mode: .exact)
        var bytes = [UInt8](repeating: 0, count: 3 * pageSize)
        var seen = 0
        try IOIterator.withDestination(&bytes) { iterator in    // a UBUF iterator over user memory
            var pages: [Page] = []
            pages.reserveCapacity(8)                              // caller storage: no allocation inside
            let got = try iterator.extractPages(into: &pages, maxPages: 8, maxSize: 1 << 20, ledger: ledger)
            print(got.byteCount, got.firstPageOffset, pages)      // user memory is pinned...
            seen = got.byteCount
            #expect(ledger.pinnedPageCount == pages.count)
            iterator.release(extractedPages: pages, ledger: ledger)  // ...and released exactly once
        }
        #expect(seen == 3 * pageSize)
        #expect(ledger.isEmpty)
    }
}
