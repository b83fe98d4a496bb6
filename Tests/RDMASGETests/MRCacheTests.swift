import Glibc
import IterExtract
import RDMASGE
import Testing
import SoftVerbs

@Suite("MR cache")
struct MRCacheTests {
    let verbs: VerbsPair
    let memory: PlainBuffer

    init() throws {
        verbs = try VerbsPair(connect: false)
        memory = PlainBuffer(pages: 64)
    }

    func range(page: Int, offset: Int = 0, length: Int) -> MemoryRange {
        MemoryRange(address: memory.address + UInt(page * pageSize + offset), length: length)
    }

    typealias Statistics = MRCache<SoftProtectionDomain>.Statistics

    @Test("misses register page-aligned regions; lookups inside them hit")
    func hitsAndMisses() throws {
        let cache = MRCache(domain: verbs.domain)
        let first = try cache.resolve(range(page: 2, offset: 100, length: 5000), access: .localWrite, retaining: false)
        #expect(first.coverage == range(page: 2, length: 2 * pageSize).address..<range(page: 4, length: 0).address)
        #expect(try cache.resolve(range(page: 2, offset: 100, length: 5000), access: [], retaining: false) == first)
        #expect(try cache.resolve(range(page: 3, length: 10), access: [], retaining: false) == first)
        let far = try cache.resolve(range(page: 20, length: 10), access: [], retaining: false)
        #expect(far.lkey != first.lkey)
        #expect(cache.statistics == Statistics(hits: 2, misses: 2, registrations: 2))
        #expect(cache.regionCount == 2 && cache.registeredBytes == 3 * pageSize)
        #expect(verbs.device.registeredRegionCount == 2)
    }

    @Test("a miss next to an idle region grows one region over both")
    func growth() throws {
        let cache = MRCache(domain: verbs.domain)
        let first = try cache.resolve(range(page: 0, length: 100), access: [], retaining: false)
        let grown = try cache.resolve(range(page: 1, length: 100), access: [], retaining: false)
        #expect(grown.coverage == range(page: 0, length: 0).address..<range(page: 2, length: 0).address)
        #expect(cache.coverage(lkey: first.lkey) == nil)
        #expect(cache.statistics == Statistics(misses: 2, registrations: 2, deregistrations: 1))
        #expect(verbs.device.registeredRegionCount == 1)
    }

    @Test("a region in use is not absorbed; its neighbour gets a region of its own")
    func inUseNotAbsorbed() throws {
        let cache = MRCache(domain: verbs.domain)
        let first = try cache.resolve(range(page: 0, length: 100), access: [], retaining: true)
        let second = try cache.resolve(range(page: 1, length: 100), access: [], retaining: true)
        #expect(first.lkey != second.lkey && cache.regionCount == 2)
        #expect(cache.references(lkey: first.lkey) == 1)
        cache.release(lkey: first.lkey)
        cache.release(lkey: second.lkey)
        #expect(cache.referenceCount == 0 && cache.regionCount == 2, "idle regions stay registered")
    }

    @Test("idle regions are evicted least recently used first under the count limit")
    func evictionOrder() throws {
        let cache = MRCache(domain: verbs.domain, limits: .init(maxRegions: 2))
        let x = try cache.resolve(range(page: 0, length: 10), access: [], retaining: false)
        let y = try cache.resolve(range(page: 10, length: 10), access: [], retaining: false)
        _ = try cache.resolve(range(page: 0, length: 10), access: [], retaining: false)  // x is now newer than y
        let z = try cache.resolve(range(page: 20, length: 10), access: [], retaining: false)
        #expect(cache.coverage(lkey: y.lkey) == nil)
        #expect(cache.coverage(lkey: x.lkey) != nil && cache.coverage(lkey: z.lkey) != nil)
        #expect(cache.statistics.evictions == 1 && cache.regionCount == 2)
        #expect(verbs.device.registeredRegionCount == 2)
    }

    @Test("the byte limit evicts idle regions, never ones in use")
    func byteLimit() throws {
        let cache = MRCache(domain: verbs.domain, limits: .init(maxBytes: 2 * pageSize))
        let x = try cache.resolve(range(page: 0, length: 10), access: [], retaining: true)
        let y = try cache.resolve(range(page: 10, length: 10), access: [], retaining: false)
        let z = try cache.resolve(range(page: 20, length: 10), access: [], retaining: true)
        #expect(cache.coverage(lkey: y.lkey) == nil, "the idle one goes")
        #expect(cache.regionCount == 2 && cache.statistics.evictions == 1)
        let w = try cache.resolve(range(page: 30, length: 10), access: [], retaining: false)
        #expect(cache.regionCount == 3, "over the limit while everything else is in use")
        #expect(cache.coverage(lkey: w.lkey) != nil, "a region just handed out is not evicted")
        cache.release(lkey: x.lkey)
        #expect(cache.coverage(lkey: w.lkey) == nil || cache.coverage(lkey: x.lkey) == nil)
        #expect(cache.regionCount == 2 && cache.registeredBytes == 2 * pageSize)
        cache.release(lkey: z.lkey)
    }

    @Test("invalidating an idle region deregisters it now")
    func invalidateIdle() throws {
        let cache = MRCache(domain: verbs.domain)
        let x = try cache.resolve(range(page: 4, length: 10), access: [], retaining: false)
        let region = try #require(cache.region(lkey: x.lkey))
        cache.invalidate(range(page: 4, offset: 5, length: 1))
        #expect(!region.isRegistered)
        #expect(cache.statistics.invalidations == 1 && cache.regionCount == 0)
        #expect(try cache.resolve(range(page: 4, length: 10), access: [], retaining: false).lkey != x.lkey)
    }

    @Test("a region in use when invalidated is never handed out again and goes after its last release")
    func invalidateInUse() throws {
        let cache = MRCache(domain: verbs.domain)
        let x = try cache.resolve(range(page: 4, length: 10), access: [], retaining: true)
        _ = try cache.resolve(range(page: 4, length: 10), access: [], retaining: true)
        let region = try #require(cache.region(lkey: x.lkey))
        cache.invalidate(range(page: 0, length: 64 * pageSize))
        #expect(region.isRegistered && cache.statistics.invalidations == 1)
        let fresh = try cache.resolve(range(page: 4, length: 10), access: [], retaining: false)
        #expect(fresh.lkey != x.lkey)
        cache.release(lkey: x.lkey)
        #expect(region.isRegistered)
        cache.release(lkey: x.lkey)
        #expect(!region.isRegistered)
        #expect(cache.references(lkey: x.lkey) == nil)
    }

    @Test("a disabled cache registers on every lookup and deregisters on release")
    func disabled() throws {
        let cache = MRCache(domain: verbs.domain, isEnabled: false)
        let a = try cache.resolve(range(page: 1, length: 10), access: [], retaining: true)
        let b = try cache.resolve(range(page: 1, length: 10), access: [], retaining: true)
        #expect(a.lkey != b.lkey)
        #expect(cache.statistics == Statistics(misses: 2, registrations: 2))
        cache.release(lkey: a.lkey)
        #expect(cache.regionCount == 1 && verbs.device.registeredRegionCount == 1)
        cache.release(lkey: b.lkey)
        #expect(cache.regionCount == 0 && verbs.device.registeredRegionCount == 0)
    }

    @Test("bad input is refused before anything is counted or registered")
    func badInput() throws {
        let cache = MRCache(domain: verbs.domain, access: .localWrite)
        #expect(throws: RDMAError.zeroLength(address: memory.address)) {
            try cache.resolve(range(page: 0, length: 0), access: [], retaining: true)
        }
        #expect(throws: RDMAError.addressOverflow(address: UInt.max - 1, length: 4)) {
            try cache.resolve(MemoryRange(address: UInt.max - 1, length: 4), access: [], retaining: true)
        }
        #expect(throws: RDMAError.accessDenied(address: memory.address, lkey: nil, missing: .remoteRead)) {
            try cache.resolve(range(page: 0, length: 4), access: [.localWrite, .remoteRead], retaining: true)
        }
        #expect(cache.statistics == Statistics())
        #expect(verbs.device.registeredRegionCount == 0)
    }

    @Test("a failed registration is a typed error and leaves nothing behind")
    func registrationFailure() throws {
        let cache = MRCache(domain: verbs.domain)
        verbs.device.inject(.registration(nth: 1))
        #expect(throws: RDMAError.registrationFailed(VerbsError(.registerMemory, errno: ENOMEM, ""))) {
            try cache.resolve(range(page: 0, length: 4), access: [], retaining: true)
        }
        #expect(cache.regionCount == 0 && cache.referenceCount == 0 && cache.statistics.registrations == 0)
    }

    @Test("registrations are capped at the device's region size; extraction splits at the cap")
    func regionSizeCap() throws {
        var attributes = SoftVerbs.defaultAttributes
        attributes.maxMemoryRegionSize = 8 * pageSize
        let verbs = try VerbsPair(attributes: attributes, connect: false)
        let cache = MRCache(domain: verbs.domain)
        var iterator = try IOIterator(ubufAt: memory.address, count: 20 * pageSize, direction: .source)
        var sges: [SGE] = []
        let ledger = PinLedger(mode: .exact)
        #expect(try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 8, keys: cache, ledger: ledger) == 20 * pageSize)
        #expect(sges.map(\.length) == [UInt32(8 * pageSize), UInt32(8 * pageSize), UInt32(4 * pageSize)])
        #expect(Set(sges.map(\.lkey)).count == 3 && cache.referenceCount == 3)
        iterator.release(extractedSGEs: sges, keys: cache, ledger: ledger)
        #expect(cache.referenceCount == 0 && ledger.isEmpty)
    }

    @Test("overlapping regions: a lookup is answered by a region that covers all of it")
    func overlappingRegions() throws {
        let cache = MRCache(domain: verbs.domain)
        let low = try cache.resolve(range(page: 0, length: 2 * pageSize), access: [], retaining: true)
        let high = try cache.resolve(range(page: 1, length: 2 * pageSize), access: [], retaining: true)
        #expect(low.coverage == range(page: 0, length: 0).address..<range(page: 2, length: 0).address)
        #expect(high.coverage == range(page: 1, length: 0).address..<range(page: 3, length: 0).address,
                "a region in use is not absorbed, so the two overlap")
        #expect(try cache.resolve(range(page: 0, offset: 5, length: pageSize), access: [], retaining: false).lkey == low.lkey)
        #expect(try cache.resolve(range(page: 1, offset: 5, length: pageSize), access: [], retaining: false).lkey == high.lkey)
        #expect(try cache.resolve(range(page: 1, length: 10), access: [], retaining: false).coverage.contains(range(page: 1, length: 10).address))
        #expect(cache.statistics == Statistics(hits: 3, misses: 2, registrations: 2, monitoredRegistrations: 2))
        let both = try cache.resolve(range(page: 0, length: 3 * pageSize), access: [], retaining: false)
        #expect(both.lkey != low.lkey && both.lkey != high.lkey && cache.statistics.misses == 3)
        cache.release(lkey: low.lkey)
        cache.release(lkey: high.lkey)
    }

    @Test("hundreds of regions: every lkey finds its region through table growth, removal and slot reuse")
    func manyRegions() throws {
        let count = 300
        let pool = try PagePool(pageCount: 2 * count)
        let base = UInt(bitPattern: pool.baseAddress)
        // Every other page, so that no region touches another and none is absorbed.
        func page(_ i: Int) -> MemoryRange { MemoryRange(address: base + UInt(2 * i * pageSize), length: pageSize) }
        let cache = MRCache(domain: verbs.domain)
        var lkeys = try (0..<count).map { try cache.resolve(page($0), access: [], retaining: true).lkey }
        #expect(Set(lkeys).count == count && cache.regionCount == count && verbs.device.registeredRegionCount == count)
        var random = SplitMix64(seed: 0x51AB)
        for i in (0..<count).shuffled(using: &random) {
            #expect(try cache.resolve(page(i), access: [], retaining: true).lkey == lkeys[i])
            #expect(cache.references(lkey: lkeys[i]) == 2)
            cache.release(lkey: lkeys[i])
            cache.release(lkey: lkeys[i])
            #expect(cache.references(lkey: lkeys[i]) == 0 && cache.coverage(lkey: lkeys[i]) == page(i).address..<page(i).address + UInt(pageSize))
        }
        // Invalidate the even regions; their slots are reused by new registrations.
        for i in stride(from: 0, to: count, by: 2) { cache.invalidate(page(i)) }
        #expect(cache.regionCount == count / 2 && verbs.device.registeredRegionCount == count / 2)
        for i in stride(from: 0, to: count, by: 2) {
            #expect(cache.coverage(lkey: lkeys[i]) == nil)
            lkeys[i] = try cache.resolve(page(i), access: [], retaining: false).lkey
        }
        #expect(Set(lkeys).count == count && cache.regionCount == count)
        for i in 0..<count { #expect(try cache.resolve(page(i), access: [], retaining: false).lkey == lkeys[i]) }
        #expect(cache.statistics == Statistics(hits: 2 * count, misses: count + count / 2, registrations: count + count / 2,
                                               deregistrations: count / 2, invalidations: count / 2,
                                               monitoredRegistrations: count))
        cache.flush()
        #expect(cache.regionCount == 0 && verbs.device.registeredRegionCount == 0)
    }

    @Test("a miss on memory that is not mapped fails with EFAULT and leaves nothing behind")
    func unmappedMemory() throws {
        let cache = MRCache(domain: verbs.domain)
        let base = try mapFarAway(pages: 2, hint: 0x4000_2000_0000)
        defer { munmap(base, 2 * pageSize) }
        #expect(munmap(base + pageSize, pageSize) == 0)
        #expect(throws: RDMAError.registrationFailed(VerbsError(.registerMemory, errno: EFAULT, ""))) {
            try cache.resolve(MemoryRange(address: UInt(bitPattern: base) + 100, length: pageSize), access: [], retaining: true)
        }
        #expect(cache.regionCount == 0 && cache.referenceCount == 0)
        #expect(cache.statistics == Statistics(misses: 1))
        #expect(verbs.device.registeredRegionCount == 0)
    }

    @Test("lookups, releases and invalidations from several threads keep every count consistent")
    func concurrentUse() async throws {
        let cache = MRCache(domain: verbs.domain, limits: .init(maxRegions: 4))
        let base = memory.address
        let threads = 4, rounds = 2000
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(thread + 1))
                    for round in 0..<rounds {
                        let page = Int.random(in: 0..<60, using: &random)
                        let range = MemoryRange(address: base + UInt(page * pageSize + Int.random(in: 0..<100, using: &random)),
                                                length: Int.random(in: 1..<3 * pageSize, using: &random))
                        guard let lkey = try? cache.resolve(range, access: [], retaining: true).lkey else {
                            Issue.record("thread \(thread) round \(round): a lookup failed")
                            continue
                        }
                        if round % 97 == 0 { cache.invalidate(range) }
                        cache.release(lkey: lkey)
                    }
                }
            }
        }
        let statistics = cache.statistics
        #expect(statistics.hits + statistics.misses == threads * rounds)
        #expect(statistics.hits > 0 && statistics.evictions > 0 && statistics.invalidations > 0, "\(statistics)")
        #expect(cache.referenceCount == 0)
        #expect(statistics.registrations - statistics.deregistrations == cache.regionCount)
        #expect(cache.regionCount <= 4 && verbs.device.registeredRegionCount == cache.regionCount)
    }

    @Test("flush deregisters idle regions and keeps those in use")
    func flush() throws {
        let cache = MRCache(domain: verbs.domain)
        let used = try cache.resolve(range(page: 0, length: 4), access: [], retaining: true)
        _ = try cache.resolve(range(page: 10, length: 4), access: [], retaining: false)
        cache.flush()
        #expect(cache.regionCount == 1 && cache.references(lkey: used.lkey) == 1)
        cache.release(lkey: used.lkey)
    }

    @Test("a merged registration that fails because an absorbed neighbour was unmapped retries with the range asked for")
    func unmappedNeighbour() throws {
        let mapping = try #require(mmap(nil, 2 * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        let base = UInt(bitPattern: mapping)
        defer { munmap(UnsafeMutableRawPointer(bitPattern: base + UInt(pageSize)), pageSize) }
        let cache = MRCache(domain: verbs.domain)
        let neighbour = try cache.resolve(MemoryRange(address: base, length: 100), access: [], retaining: false)
        #expect(neighbour.coverage == base..<base + UInt(pageSize))
        // The neighbour's memory goes away while its idle region stays cached (UCX #9592).
        munmap(mapping, pageSize)
        let wanted = MemoryRange(address: base + UInt(pageSize), length: 100)
        let resolution = try cache.resolve(wanted, access: [], retaining: false)
        #expect(resolution.coverage == base + UInt(pageSize)..<base + UInt(2 * pageSize))
        #expect(cache.statistics.registrations == 2)
    }
}
