import IterExtract
import RDMASGE
import SoftVerbs
import Testing

@Suite("MR cache and library memory")
struct MRCacheLibraryMemoryTests {
    @Test("a page pool that goes away takes its cached regions with it, with or without a monitor",
          arguments: [MRCacheMonitor.none, .userfaultfd])
    func pagePoolUnmapped(monitor: MRCacheMonitor) throws {
        let domain = try SoftVerbs().allocateProtectionDomain()
        let cache = MRCache(domain: domain, monitor: monitor)
        var pool: PagePool? = try PagePool(pageCount: 8)
        let range = MemoryRange(address: pool!.addressRange.lowerBound, length: 2 * pageSize)
        _ = try cache.resolve(range, access: .localWrite, retaining: false)
        #expect(cache.regionCount == 1)
        pool = nil
        #expect(cache.regionCount == 0, "the pool's region was deregistered before the pool unmapped its memory")
        #expect(cache.statistics.invalidations >= 1)
    }

    @Test("a virtual mapping that goes away takes its cached regions with it")
    func virtualMappingUnmapped() throws {
        let domain = try SoftVerbs().allocateProtectionDomain()
        let cache = MRCache(domain: domain, monitor: .none)
        let pool = try PagePool(pageCount: 8)
        var mapping: VirtualMapping? = try VirtualMapping(pages: try pool.allocatePages(count: 4), of: pool)
        let range = MemoryRange(address: UInt(bitPattern: mapping!.baseAddress), length: 4 * pageSize)
        _ = try cache.resolve(range, access: .localWrite, retaining: false)
        #expect(cache.regionCount == 1)
        mapping = nil
        #expect(cache.regionCount == 0)
        _ = try cache.resolve(MemoryRange(address: pool.addressRange.lowerBound, length: pageSize), access: .localWrite, retaining: false)
        #expect(cache.regionCount == 1, "the pool's own memory is still cacheable")
    }
}
