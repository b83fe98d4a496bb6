import IterExtract
import RDMASGE
import TestKit
import Testing

@Suite("Extraction properties against the reference model")
struct PropertyTests {
    /// Regions over the whole pool, cut at random pages; some neighbours share a key.
    static func randomRegions(_ fixture: RandomIterator) -> RegionTable {
        let range = fixture.pool.addressRange
        var table = RegionTable()
        var start = range.lowerBound
        var key: UInt32 = 1
        while start < range.upperBound {
            let end = min(range.upperBound, start + UInt(fixture.next(in: 1...300) * pageSize))
            if fixture.next(in: 0...3) != 0 { key += 1 }
            try! table.insert(.init(coverage: start..<end, lkey: key, access: .all))
            start = end
        }
        return table
    }

    /// Whether every byte of `sge` is in a region with its lkey (adjacent regions that
    /// share a key may carry one SGE together).
    static func isCovered(_ sge: SGE, by table: RegionTable) -> Bool {
        var address = UInt(sge.address)
        let end = address + UInt(sge.length)
        while address < end {
            guard let region = table.regions.first(where: { $0.coverage.contains(address) }), region.lkey == sge.lkey
            else { return false }
            address = region.coverage.upperBound
        }
        return true
    }

    /// The SGEs the kernel's granularity would produce: one per BVEC element or
    /// folio, one per page for the other kinds.
    static func kernelCount(_ iterator: IOIterator) -> Int {
        var count = 0
        iterator.walk(maxBytes: .max) { range in
            count += iterator.kind == .bvec || iterator.kind == .folioq ? 1 : range.pages.count
            return range.length
        }
        return count
    }

    @Test("bytes, keys and pins match the model under random limits", arguments: RandomIterator.kinds)
    func randomExtraction(kind: IOIteratorKind) throws {
        for seed in UInt64(1)...40 {
            let fixture = RandomIterator(kind: kind, direction: seed % 2 == 0 ? .source : .destination, seed: seed)
            let table = Self.randomRegions(fixture)
            let ledger = PinLedger(mode: .exact)
            var iterator = fixture.makeIterator()
            var model = fixture.model
            var described: [MemoryRange] = []
            while iterator.count > 0 {
                var sges: [SGE] = []
                let maxSGEs = fixture.next(in: 1...6)
                let maxSize = fixture.next(in: 1...40_000)
                let bytes = try iterator.extract(maxSize: maxSize, into: &sges, maxSGEs: maxSGEs, keys: table, ledger: ledger)
                #expect(bytes > 0, "\(fixture)")
                #expect(bytes <= maxSize && sges.count <= maxSGEs, "\(fixture)")
                let ranges = sges.map { MemoryRange(address: UInt($0.address), length: Int($0.length)) }
                #expect(coalesced(ranges) == model.nextRanges(bytes), "\(fixture)")
                for sge in sges {
                    #expect(Self.isCovered(sge, by: table), "\(fixture): \(sge)")
                }
                let pages = ranges.reduce(0) { $0 + $1.pages.count }
                #expect(ledger.pinnedPageCount == (kind.isUserBacked ? pages : 0), "\(fixture)")
                iterator.release(extractedSGEs: sges, keys: table, ledger: ledger)
                #expect(ledger.isEmpty, "\(fixture)")
                model.advance(bytes)
                #expect(iterator.count == model.count, "\(fixture)")
                described += ranges
            }
            #expect(coalesced(described) == coalesced(fixture.ranges), "\(fixture)")
        }
    }

    @Test("through an MR cache, every SGE holds one reference on a region that covers it", arguments: RandomIterator.kinds)
    func cacheReferences(kind: IOIteratorKind) throws {
        let verbs = try VerbsPair(connect: false)
        for seed in UInt64(200)...230 {
            let fixture = RandomIterator(kind: kind, direction: seed % 2 == 0 ? .source : .destination, seed: seed)
            let cache = MRCache(domain: verbs.domain, limits: .init(maxRegions: fixture.next(in: 0...8)))
            let ledger = PinLedger(mode: .exact)
            var iterator = fixture.makeIterator()
            var model = fixture.model
            // The previous call's SGEs stay held through the next call, so that lookups meet regions in use.
            var held: [SGE] = []
            while iterator.count > 0 {
                var sges: [SGE] = []
                let maxSGEs = fixture.next(in: 1...6)
                let bytes = try iterator.extract(maxSize: fixture.next(in: 1...40_000), into: &sges, maxSGEs: maxSGEs,
                                                 keys: cache, ledger: ledger)
                let ranges = sges.map { MemoryRange(address: UInt($0.address), length: Int($0.length)) }
                #expect(bytes > 0 && sges.count <= maxSGEs && coalesced(ranges) == model.nextRanges(bytes), "\(fixture)")
                #expect(cache.referenceCount == held.count + sges.count, "\(fixture)")
                for sge in sges {
                    let coverage = cache.coverage(lkey: sge.lkey)
                    #expect(coverage.map { $0.contains(UInt(sge.address)) && UInt(sge.address) + UInt(sge.length) <= $0.upperBound } == true,
                            "\(fixture): \(sge) in \(String(describing: coverage))")
                    #expect(cache.references(lkey: sge.lkey) == (held + sges).count(where: { $0.lkey == sge.lkey }), "\(fixture)")
                }
                iterator.release(extractedSGEs: held, keys: cache, ledger: ledger)
                held = sges
                model.advance(bytes)
            }
            iterator.release(extractedSGEs: held, keys: cache, ledger: ledger)
            #expect(cache.referenceCount == 0 && ledger.isEmpty, "\(fixture)")
        }
    }

    @Test("under one key, SGEs are the coalesced ranges: never more than the kernel's", arguments: RandomIterator.kinds)
    func singleKeyCount(kind: IOIteratorKind) throws {
        for seed in UInt64(100)...140 {
            let fixture = RandomIterator(kind: kind, seed: seed)
            let keys = SingleKeyResolver(lkey: 0x42, coverage: fixture.pool.addressRange, access: .all)
            let ledger = PinLedger(mode: .exact)
            var iterator = fixture.makeIterator()
            let kernel = Self.kernelCount(iterator)
            var sges: [SGE] = []
            let bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 10_000, keys: keys, ledger: ledger)
            #expect(bytes == fixture.totalCount, "\(fixture)")
            let ranges = sges.map { MemoryRange(address: UInt($0.address), length: Int($0.length)) }
            #expect(ranges == coalesced(fixture.ranges), "\(fixture)")
            #expect(sges.count <= kernel, "\(fixture)")
            #expect(sges.allSatisfy { $0.lkey == 0x42 })
            iterator.release(extractedSGEs: sges, keys: keys, ledger: ledger)
            #expect(ledger.isEmpty)
        }
    }
}
