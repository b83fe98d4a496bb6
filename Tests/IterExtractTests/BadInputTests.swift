import Glibc
import IterExtract
import Testing

/// Every extraction error leaves no trace: the iterator where it was, the output
/// as it was, and no pin held.
@Suite("Bad input leaves no trace")
struct BadInputTests {
    /// What must not change: position, segments and remaining bytes.
    private func snapshot(_ iterator: IOIterator) -> (Int, Int, UInt) {
        (iterator.count, iterator.remainingSegmentCount, iterator.alignment)
    }

    private let sentinel = [Page(frame: 0xdead)]

    @Test("DISCARD cannot be extracted")
    func discard() {
        var iterator = IOIterator(discarding: 4096)
        var pages = sentinel
        #expect(throws: IOIteratorError.notExtractable(.discard)) {
            try iterator.extractPages(into: &pages, maxPages: 8, maxSize: 4096)
        }
        #expect(iterator.count == 4096 && pages == sentinel)
    }

    @Test("no room for pages describes nothing, without error, as maxSize 0 does (the kernel fails with ENOMEM)")
    func noCapacity() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 100, alignment: 8)
        defer { buffer.deallocate() }
        var iterator = IOIterator(destination: buffer)
        let ledger = PinLedger(mode: .exact)
        var pages = sentinel
        let before = snapshot(iterator)
        #expect(try iterator.extractPages(into: &pages, maxPages: 0, maxSize: 100, ledger: ledger) == .empty)
        #expect(snapshot(iterator) == before && pages == sentinel && ledger.isEmpty)
        #expect(try iterator.extractPages(into: &pages, maxPages: 0, maxSize: 0, ledger: ledger) == .empty)
    }

    @Test("a pin beyond the ledger's limit fails whole: nothing appended, advanced or pinned")
    func pinLimit() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 * pageSize, alignment: pageSize)
        defer { buffer.deallocate() }
        let ledger = PinLedger(mode: .exact, limit: 5)
        var iterator = IOIterator(destination: buffer)
        var pages = sentinel
        let before = snapshot(iterator)
        #expect(throws: IOIteratorError.pinLimitExceeded(requested: 8, available: 5)) {
            try iterator.extractPages(into: &pages, maxPages: 8, maxSize: .max, ledger: ledger)
        }
        #expect(snapshot(iterator) == before && pages == sentinel && ledger.isEmpty)
        // Within the limit the same call succeeds.
        let result = try iterator.extractPages(into: &pages, maxPages: 5, maxSize: .max, ledger: ledger)
        #expect(result.pageCount == 5 && ledger.pinnedPageCount == 5)
        iterator.release(extractedPages: pages.dropFirst(), ledger: ledger)
        #expect(ledger.isEmpty)
    }

    @Test("a pin failure part-way through extractUserPages unpins what it took")
    func pinnedUserPagesFailure() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * pageSize, alignment: pageSize)
        defer { buffer.deallocate() }
        let segments = [iovec(iov_base: buffer.baseAddress!, iov_len: 4 * pageSize),
                        iovec(iov_base: buffer.baseAddress! + 8 * pageSize, iov_len: 8 * pageSize)]
        try segments.withUnsafeBufferPointer { segments in
            let ledger = PinLedger(mode: .exact, limit: 6)
            var iterator = try IOIterator(iovecs: segments, direction: .source)
            #expect(throws: IOIteratorError.pinLimitExceeded(requested: 8, available: 2)) {
                _ = try iterator.extractUserPages(maxSize: .max, ledger: ledger)
            }
            #expect(iterator.count == 12 * pageSize && iterator.remainingSegmentCount == 2)
            #expect(ledger.isEmpty)
        }
    }

    @Test("a PIPE cannot be a source")
    func pipeSource() throws {
        let pool = try PagePool(pageCount: 4)
        #expect(throws: IOIteratorError.pipeIsDestinationOnly) {
            try IOIterator(pipe: PagePipe(pool: pool), count: 10, direction: .source)
        }
    }

    @Test("a PIPE whose pool is empty cannot take pages, and nothing changes")
    func pipeFull() throws {
        let pool = try PagePool(pageCount: 1)
        let pipe = PagePipe(pool: pool)
        let hog = try pool.allocateFolio()
        var iterator = try IOIterator(pipe: pipe, count: 100)
        var pages = sentinel
        #expect(throws: IOIteratorError.pipeFull) {
            try iterator.extractPages(into: &pages, maxPages: 4, maxSize: 100)
        }
        #expect(iterator.count == 100 && pages == sentinel && pipe.occupancy == 0)
        pool.release(hog)
    }

    @Test("advance on a PIPE whose pool runs out of pages moves as far as the pages allow")
    func pipeAdvanceShort() throws {
        let pool = try PagePool(pageCount: 2)
        let pipe = PagePipe(pool: pool, capacity: 4)
        var iterator = try IOIterator(pipe: pipe, count: 4 * pageSize)
        #expect(iterator.advance(3 * pageSize) == 2 * pageSize, "the bytes the pool's two pages hold")
        #expect(iterator.count == 2 * pageSize && pipe.occupancy == 2)
        #expect(iterator.advance(10) == 0, "no page left, nothing moves")
        #expect(iterator.count == 2 * pageSize)
    }

    @Test("a PIPE extraction with no page limit takes what the pipe holds")
    func pipeUnlimitedPages() throws {
        let pool = try PagePool(pageCount: 8)
        let pipe = PagePipe(pool: pool, capacity: 4)
        var iterator = try IOIterator(pipe: pipe, count: 3 * pageSize)
        #expect(iterator.zero(100) == 100, "the newest buffer has room left")
        var pages: [Page] = []
        #expect(try iterator.extractPages(into: &pages, maxPages: .max, maxSize: .max).byteCount == 3 * pageSize - 100)
        #expect(pages.count == 3 && iterator.count == 0)
    }

    @Test("page counts of FOLIOQ and XARRAY counts near Int.max do not overflow")
    func pageCountsNearIntMax() throws {
        let pool = try PagePool(pageCount: 1)
        let queue = FolioQueue.chain(of: [try pool.allocateFolio()])
        let folioQueue = IOIterator(folioQueue: queue, offset: 100, count: .max, direction: .source)
        #expect(folioQueue.pageCount(max: .max) == (Int.max >> pageShift) + 2, "100 + Int.max bytes from a page start")
        let pageCache = try IOIterator(pageCache: PageCache(), position: 100, count: .max - 100, direction: .source)
        #expect(pageCache.pageCount(max: .max) == (Int.max >> pageShift) + 1, "positions 0 to Int.max - 1")
        #expect(pageCache.pageCount(max: 3) == 3)
    }

    @Test("a page-cache index whose bytes would lie past Int.max, or a negative one, is refused")
    func pageCacheIndexRange() throws {
        let pool = try PagePool(pageCount: 4)
        let cache = PageCache()
        let small = try pool.allocateFolio()
        let large = try pool.allocateFolio(order: 1)
        let limit = (Int.max >> pageShift) + 1
        #expect(throws: MemoryError.indexOutOfRange(-1)) { try cache.insert(small, at: -1) }
        #expect(throws: MemoryError.indexOutOfRange(Int.max)) { try cache.insert(small, at: .max) }
        #expect(throws: MemoryError.indexOutOfRange(limit)) { try cache.insert(small, at: limit) }
        #expect(throws: MemoryError.indexOutOfRange(limit)) { try cache.insert(large, at: limit) }
        try cache.insert(small, at: limit - 1)
        #expect(cache.entry(containing: limit - 1)?.folio == small)
        try cache.insert(large, at: limit - 4)
        #expect(cache.entry(containing: limit - 3)?.folio == large && cache.folioCount == 2)
    }

    @Test("isDirect: a range is direct unless a mapping shows memory somewhere in it")
    func directRanges() throws {
        let pool = try PagePool(pageCount: 8)
        let pages = try pool.allocatePages(count: 4, arrangement: .swappedHalves)
        let mapping = try VirtualMapping(pages: pages, of: pool)
        let start = UInt(bitPattern: mapping.baseAddress)
        let end = start + UInt(4 * pageSize)
        #expect(!AddressTranslation.isDirect(from: start, to: end))
        #expect(!AddressTranslation.isDirect(from: start + 5, to: start + 6))
        #expect(!AddressTranslation.isDirect(from: start - 1, to: start + 1), "overlapping the start")
        #expect(!AddressTranslation.isDirect(from: end - 1, to: end + 100), "overlapping the end")
        // The pool's own memory is never a mapping (other tests' mappings may sit anywhere else).
        #expect(AddressTranslation.isDirect(from: pool.addressRange.lowerBound, to: pool.addressRange.upperBound))
        // PagesOfRange follows the same answer: the mapped range yields pool pages, not its own frames.
        #expect(Array(MemoryRange(address: start, length: 4 * pageSize).pages) == pages)
        withExtendedLifetime(mapping) {}
    }
}
