import Glibc
import IterExtract
import RDMASGE
import SoftVerbs
import Testing

/// Extraction through an MR cache looks a region up once per run of pieces it covers,
/// and takes and gives back the run's references in one step each, while every SGE
/// still holds exactly one reference.
@Suite("MR cache: references in batches")
struct MRCacheRunTests {
    let verbs: VerbsPair
    let memory: PlainBuffer

    init() throws {
        verbs = try VerbsPair(connect: false)
        memory = PlainBuffer(pages: 64)
    }

    /// `count` segments of 100 bytes, `spacing` bytes apart, from `first` bytes into the buffer.
    func segments(_ count: Int, spacing: Int, first: Int = 0) -> [iovec] {
        (0..<count).map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: memory.address + UInt(first + $0 * spacing)), iov_len: 100) }
    }

    /// Extracts all of `segments` through `cache`, checks that each SGE's lkey holds one
    /// reference per SGE, releases them, checks that nothing is held, and returns the SGEs.
    func extract(_ segments: [iovec], cache: MRCache<SoftProtectionDomain>) throws -> [SGE] {
        let ledger = PinLedger(mode: .exact)
        return try segments.withUnsafeBufferPointer { segments throws in
            var iterator = try IOIterator(iovecs: segments, direction: .source)
            var sges: [SGE] = []
            #expect(try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1000, keys: cache, ledger: ledger) == 100 * segments.count)
            #expect(cache.referenceCount == sges.count)
            for lkey in Set(sges.map(\.lkey)) {
                #expect(cache.references(lkey: lkey) == sges.count(where: { $0.lkey == lkey }), "one reference per SGE")
            }
            iterator.release(extractedSGEs: sges, keys: cache, ledger: ledger)
            #expect(cache.referenceCount == 0 && ledger.isEmpty)
            return sges
        }
    }

    @Test("retain(lkey:count:) and release(lkey:count:) move a region's count by `count`")
    func counts() throws {
        let cache = MRCache(domain: verbs.domain)
        let resolution = try cache.resolve(MemoryRange(address: memory.address, length: 8), access: [], retaining: true)
        cache.retain(lkey: resolution.lkey, count: 0)
        cache.retain(lkey: resolution.lkey, count: 3)
        #expect(cache.references(lkey: resolution.lkey) == 4 && cache.referenceCount == 4)
        #expect(cache.statistics.hits + cache.statistics.misses == 1, "retaining looks nothing up")
        cache.release(lkey: resolution.lkey, count: 2)
        #expect(cache.references(lkey: resolution.lkey) == 2)
        cache.release(lkey: resolution.lkey)
        cache.release(lkey: resolution.lkey, count: 1)
        #expect(cache.referenceCount == 0)
    }

    @Test("the last of a batch released on an invalidated region deregisters it")
    func invalidatedRun() throws {
        let cache = MRCache(domain: verbs.domain)
        let resolution = try cache.resolve(MemoryRange(address: memory.address, length: 8), access: [], retaining: true)
        cache.retain(lkey: resolution.lkey, count: 9)
        cache.invalidate(MemoryRange(address: memory.address, length: pageSize))
        #expect(cache.regionCount == 1 && verbs.device.registeredRegionCount == 1, "in use: it stays registered")
        cache.release(lkey: resolution.lkey, count: 10)
        #expect(cache.regionCount == 0 && verbs.device.registeredRegionCount == 0)
    }

    @Test("releasing more of a batch than was taken traps")
    func overRelease() async {
        await #expect(processExitsWith: .failure) {
            let (cache, lkey, memory) = cacheWithRetainedLookup()
            cache.retain(lkey: lkey, count: 2)
            cache.release(lkey: lkey, count: 4)
            withExtendedLifetime(memory) {}
        }
    }

    @Test("segments whose pages touch: one registration, one lookup per extraction, one reference per SGE")
    func oneRegionForTouchingSegments() throws {
        let cache = MRCache(domain: verbs.domain)
        // 200 segments of 100 bytes, 1 KiB apart: 50 pages, all touched.
        let segments = segments(200, spacing: 1024)
        let sges = try extract(segments, cache: cache)
        #expect(sges.count == 200 && Set(sges.map(\.lkey)).count == 1)
        #expect(cache.statistics.misses == 1 && cache.statistics.hits == 0 && cache.regionCount == 1)
        let coverage = try #require(cache.coverage(lkey: sges[0].lkey))
        #expect(coverage == memory.address..<memory.address + UInt(50 * pageSize), "exactly the pages the segments occupy")
        #expect(try extract(segments, cache: cache) == sges)
        #expect(cache.statistics.hits == 1 && cache.statistics.misses == 1, "warm: one lookup")
    }

    @Test("a page that no segment touches is not registered: the run stops before it")
    func gapsAreNotBridged() throws {
        let cache = MRCache(domain: verbs.domain)
        // Two groups of 10 segments, one page apart within a group, 10 pages between the groups.
        let segments = segments(10, spacing: pageSize) + segments(10, spacing: pageSize, first: 20 * pageSize)
        let sges = try extract(segments, cache: cache)
        let lkeys = Array(Set(sges.map(\.lkey)))
        #expect(lkeys.count == 2 && cache.statistics.misses == 2)
        let coverages = lkeys.compactMap { cache.coverage(lkey: $0) }.sorted { $0.lowerBound < $1.lowerBound }
        #expect(coverages == [memory.address..<memory.address + UInt(10 * pageSize),
                              memory.address + UInt(20 * pageSize)..<memory.address + UInt(30 * pageSize)])
    }

    @Test("a registration that fails after a batch was reused releases every reference taken")
    func failureAfterRun() throws {
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact)
        let segments = segments(10, spacing: pageSize) + segments(10, spacing: pageSize, first: 20 * pageSize)
        verbs.device.inject(.registration(nth: 2))
        try segments.withUnsafeBufferPointer { buffer in
            var iterator = try IOIterator(iovecs: buffer, direction: .source)
            var sges: [SGE] = []
            #expect(throws: RDMAError.registrationFailed(VerbsError(.registerMemory, errno: ENOMEM, ""))) {
                try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1000, keys: cache, ledger: ledger)
            }
            #expect(sges.isEmpty && iterator.count == 2000 && ledger.isEmpty)
        }
        #expect(cache.referenceCount == 0 && cache.regionCount == 1, "the first group's region stays, idle")
    }
}
