import IterExtract
import Testing

@Suite("PagePool")
struct PagePoolTests {
    @Test("folios come out of the buddy allocator aligned and contiguous, and go back when counts allow")
    func buddy() throws {
        let pool = try PagePool(pageCount: 1024)
        let big = try pool.allocateFolio(order: 9)
        #expect(big.pageCount == 512)
        #expect((big.head.frame - pool.firstFrame) % 512 == 0)
        #expect(pool.folio(containing: big.page(at: 300)) == big)
        #expect(pool.freePageCount == 512)
        pool.pin(big)
        pool.release(big)
        #expect(pool.counts(of: big.head) == (0, 1))
        #expect(pool.freePageCount == 512, "a pinned folio is not freed")
        pool.unpin(big)
        #expect(pool.freePageCount == 1024)
        #expect(pool.folio(containing: big.head) == nil)
        // After everything is freed the buddies merge again: two order-9 folios fit.
        _ = try pool.allocateFolio(order: 9)
        _ = try pool.allocateFolio(order: 9)
        #expect(throws: MemoryError.poolExhausted(order: 0)) { try pool.allocateFolio(order: 0) }
    }

    @Test("swapped halves: page i and page i + n/2 trade places for i < n/4")
    func swappedHalves() throws {
        let pool = try PagePool(pageCount: 16)
        let pages = try pool.allocatePages(count: 16, arrangement: .swappedHalves)
        #expect(pages[0].frame == pool.firstFrame + 8)
        #expect(pages[8].frame == pool.firstFrame)
        #expect(pages[4].frame == pool.firstFrame + 4)
        #expect(pages[3].frame == pool.firstFrame + 11)
    }

    @Test("a virtual mapping shows pool pages contiguously and translates back to them")
    func virtualMapping() throws {
        let pool = try PagePool(pageCount: 8)
        let pages = try pool.allocatePages(count: 4, arrangement: .swappedHalves)
        let mapping = try VirtualMapping(pages: pages, of: pool)
        mapping.bytes[pageSize + 5] = 0xAB
        #expect(pages[1].baseAddress.load(fromByteOffset: 5, as: UInt8.self) == 0xAB)
        let address = UInt(bitPattern: mapping.baseAddress) + UInt(2 * pageSize + 17)
        #expect(AddressTranslation.page(containing: address) == pages[2])
    }
}
