import IterExtract
import Testing

@Suite("PageCache, FolioQueue, PagePipe")
struct ContainerTests {
    @Test("a page cache holds multi-index folios with holes between them")
    func pageCache() throws {
        let pool = try PagePool(pageCount: 64)
        let cache = PageCache()
        let big = try pool.allocateFolio(order: 2)
        let small = try pool.allocateFolio(order: 0)
        try cache.insert(big, at: 4)
        try cache.insert(small, at: 10)
        #expect(cache.entry(containing: 6)?.folio == big)
        #expect(cache.entry(containing: 8) == nil, "index 8 is a hole")
        #expect(cache.entries(overlapping: 0..<11).map(\.index) == [4, 10])
        #expect(throws: MemoryError.misalignedIndex(index: 2, order: 2)) { try cache.insert(big, at: 2) }
        #expect(throws: MemoryError.indexOccupied(10)) { try cache.insert(try pool.allocateFolio(order: 2), at: 8) }
        #expect(cache.remove(at: 5)?.folio == big)
        #expect(cache.folioCount == 1)
    }

    @Test("XARRAY page extraction lists sub-pages of large folios and stops at a hole")
    func xarrayExtraction() throws {
        let pool = try PagePool(pageCount: 64)
        let cache = PageCache()
        let big = try pool.allocateFolio(order: 2)
        try cache.insert(big, at: 0)
        try cache.insert(try pool.allocateFolio(order: 0), at: 5)
        var iterator = try IOIterator(pageCache: cache, position: 100, count: 6 * pageSize - 100, direction: .source)
        var pages: [Page] = []
        let result = try iterator.extractPages(into: &pages, maxPages: 16, maxSize: .max)
        #expect(pages == (0..<4).map(big.page(at:)))
        #expect(result == PageExtraction(byteCount: 4 * pageSize - 100, firstPageOffset: 100, pageCount: 4))
        #expect(try iterator.extractPages(into: &pages, maxPages: 16, maxSize: .max) == .empty, "the hole stops it")
    }

    @Test("a folio queue appends segments as they fill")
    func folioQueue() throws {
        let pool = try PagePool(pageCount: 16)
        let folios = try (0..<5).map { _ in try pool.allocateFolio() }
        let queue = FolioQueue.chain(of: folios, segmentCapacity: 2)
        #expect(queue.slotCount == 2 && queue.next?.slotCount == 2 && queue.next?.next?.slotCount == 1)
        #expect(queue.next?.previous === queue)
        #expect(throws: MemoryError.segmentFull) { try queue.append(folios[0]) }
    }

    @Test("a PIPE iterator appends pages, fills its own newest buffer, and reverts what it added")
    func pipe() throws {
        let pool = try PagePool(pageCount: 8)
        let pipe = PagePipe(pool: pool, capacity: 4)
        var iterator = try IOIterator(pipe: pipe, count: 10 * pageSize)
        #expect(iterator.count == 4 * pageSize, "clamped to the ring's free buffers")
        let data = [UInt8](repeating: 9, count: 5000)
        #expect(data.withUnsafeBytes { iterator.copy(from: $0) } == 5000)
        #expect(pipe.buffers.map(\.length) == [4096, 904])
        var pages: [Page] = []
        let result = try iterator.extractPages(into: &pages, maxPages: 2, maxSize: .max)
        #expect(result.firstPageOffset == 904 && result.pageCount == 2)
        #expect(result.byteCount == pageSize - 904 + pageSize)
        #expect(pipe.buffers.map(\.length) == [4096, 4096, 4096])
        iterator.revert(pageSize + 100)
        #expect(pipe.buffers.map(\.length) == [4096, 3996])
        #expect(pipe.read() == Array(repeating: 9, count: 4096))
        #expect(pool.freePageCount == 7)
    }

    @Test("pinned user pages describe the bytes as a BVEC and release their pins once")
    func pinnedUserPages() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 3 * pageSize, alignment: pageSize)
        defer { buffer.deallocate() }
        for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: i) }
        let ledger = PinLedger(mode: .exact)
        var iterator = try IOIterator(ubufAt: UInt(bitPattern: buffer.baseAddress) + 10, count: 2 * pageSize, direction: .source)
        let pinned = try iterator.extractUserPages(maxSize: .max, ledger: ledger)
        #expect(iterator.count == 0)
        #expect(ledger.pinnedPageCount == 3)
        #expect(pinned.bioVecs.map(\.length) == [pageSize - 10, pageSize, 10])
        let copied: [UInt8] = pinned.withIterator { bvec in
            #expect(bvec.kind == .bvec && !bvec.extractionWillPin)
            var out = [UInt8](repeating: 0, count: 2 * pageSize)
            _ = out.withUnsafeMutableBytes { bvec.copy(into: $0) }
            return out
        }
        #expect(copied == Array(buffer[10..<10 + 2 * pageSize]))
        pinned.release()
        #expect(ledger.isEmpty)
    }
}
