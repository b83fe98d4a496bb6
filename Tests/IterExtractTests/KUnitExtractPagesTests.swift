import IterExtract
import Testing
import TestKit

/// Ports of the kernel's KUnit `iov_iter_extract_pages` cases: every page and
/// every first-page offset is checked against the range tables.
@Suite("KUnit: extract pages")
struct KUnitExtractPagesTests {
    let buffer = KUnitBuffer()

    /// Extracts `iterator` to the end in calls of at most 100 KiB and 8 pages and
    /// checks each page against the buffer page holding the next expected byte.
    private func expectPages(_ iterator: inout IOIterator, ranges: [(from: Int, to: Int)], ledger: PinLedger) {
        var size = iterator.count
        var rangeIndex = 0
        var from = ranges[0].from
        var pages: [Page] = []
        pages.reserveCapacity(8)
        var allPages: [Page] = []
        repeat {
            pages.removeAll(keepingCapacity: true)
            let result: PageExtraction
            do {
                result = try iterator.extractPages(into: &pages, maxPages: 8, maxSize: 100 * 1024, ledger: ledger)
            } catch {
                Issue.record("extraction failed: \(error)")
                return
            }
            #expect(result.firstPageOffset >= 0 && result.firstPageOffset < pageSize)
            #expect(result.byteCount <= size)
            #expect(iterator.count == size - result.byteCount)
            #expect(pages.count == result.pageCount && pages.count <= 8)
            size -= result.byteCount
            if result.byteCount == 0 { break }
            var len = result.byteCount
            var offset0 = result.firstPageOffset
            for page in pages {
                let part = min(len, pageSize - offset0)
                while from == ranges[rangeIndex].to {
                    rangeIndex += 1
                    if rangeIndex == ranges.count { Issue.record("more pages than ranges"); return }
                    from = ranges[rangeIndex].from
                }
                #expect(page == buffer.pages[from / pageSize], "byte \(String(from, radix: 16))")
                #expect(offset0 == from % pageSize, "byte \(String(from, radix: 16))")
                from += part
                len -= part
                offset0 = 0
            }
            #expect(len == 0, "the pages describe exactly the bytes reported")
            allPages += pages
        } while iterator.count > 0
        #expect(size == 0)
        #expect(iterator.count == 0)
        iterator.release(extractedPages: allPages, ledger: ledger)
        #expect(ledger.isEmpty)
    }

    @Test("KVEC: one segment per call, pages through the virtual mapping")
    func kvec() throws {
        let ranges = KUnit.kvecRanges
        try buffer.kvecs(ranges).withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(kvecs: segments, direction: .destination)
            expectPages(&iterator, ranges: ranges, ledger: PinLedger(mode: .exact))
        }
    }

    @Test("BVEC: spans page-aligned elements")
    func bvec() throws {
        let ranges = KUnitBuffer.bvecBufferRanges()
        try buffer.bvecs().withUnsafeBufferPointer { elements in
            var iterator = try IOIterator(bvecs: elements, direction: .destination)
            expectPages(&iterator, ranges: ranges, ledger: PinLedger(mode: .exact))
        }
    }

    @Test("FOLIOQ: one iterator per KVEC range, advanced to its start")
    func folioQueue() {
        let queue = buffer.folioQueue()
        for range in KUnit.kvecRanges {
            var iterator = IOIterator(folioQueue: queue, count: range.to, direction: .destination)
            iterator.advance(range.from)
            if iterator.count == 0 { continue }
            expectPages(&iterator, ranges: [range], ledger: PinLedger(mode: .exact))
        }
    }

    @Test("XARRAY: one iterator per KVEC range")
    func xarray() throws {
        let cache = buffer.pageCache()
        for range in KUnit.kvecRanges where range.to > range.from {
            var iterator = try IOIterator(pageCache: cache, position: range.from, count: range.to - range.from, direction: .destination)
            expectPages(&iterator, ranges: [range], ledger: PinLedger(mode: .exact))
        }
    }

    @Test("UBUF over the same buffer: pinned, then released exactly")
    func ubuf() {
        let ledger = PinLedger(mode: .exact)
        var iterator = IOIterator(destination: buffer.bytes)
        var pages: [Page] = []
        let result = try! iterator.extractPages(into: &pages, maxPages: 8, maxSize: 100 * 1024, ledger: ledger)
        #expect(result == PageExtraction(byteCount: 8 * pageSize, firstPageOffset: 0, pageCount: 8))
        #expect(pages == Array(buffer.pages[0..<8]))
        #expect(ledger.pinnedPageCount == 8)
        #expect(ledger.pinCount(of: buffer.pages[3]) == 1)
        iterator.release(extractedPages: pages, ledger: ledger)
        #expect(ledger.isEmpty)
    }
}
