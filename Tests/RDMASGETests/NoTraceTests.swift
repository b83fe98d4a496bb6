import Glibc
import IterExtract
import RDMASGE
import SoftVerbs
import TestKit
import Testing

/// Extracts from `iterator` expecting `error`, then checks that nothing changed: the
/// iterator's ranges, the output, the ledger and the cache's references.
func expectNoTrace<Keys: KeyResolver>(
    _ iterator: inout IOIterator, keys: Keys, ledger: PinLedger, error: RDMAError, maxSGEs: Int = 64,
    references: () -> Int = { 0 }, sourceLocation: SourceLocation = #_sourceLocation
) {
    let ranges = remainingRanges(iterator)
    let count = iterator.count
    let sentinel = sge(0xdead, 1, 0xbeef)
    var sges = [sentinel]
    #expect(throws: error, sourceLocation: sourceLocation) {
        try iterator.extract(maxSize: .max, into: &sges, maxSGEs: maxSGEs, keys: keys, ledger: ledger)
    }
    #expect(sges == [sentinel], sourceLocation: sourceLocation)
    #expect(iterator.count == count, sourceLocation: sourceLocation)
    #expect(remainingRanges(iterator) == ranges, sourceLocation: sourceLocation)
    #expect(ledger.isEmpty, sourceLocation: sourceLocation)
    #expect(references() == 0, sourceLocation: sourceLocation)
}

@Suite("Extraction errors leave no trace")
struct NoTraceTests {
    @Test("DISCARD and PIPE are not extractable")
    func notExtractable() throws {
        let keys = SingleKeyResolver(lkey: 1, coverage: 0..<UInt.max, access: .all)
        let ledger = PinLedger(mode: .exact)
        var discard = IOIterator(discarding: 100)
        expectNoTrace(&discard, keys: keys, ledger: ledger, error: .iterator(.notExtractable(.discard)))
        let pool = try PagePool(pageCount: 8)
        let pipe = PagePipe(pool: pool, capacity: 4)
        var iterator = try IOIterator(pipe: pipe, count: 4096)
        var sges: [SGE] = []
        #expect(throws: RDMAError.iterator(.notExtractable(.pipe))) {
            try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 4, keys: keys, ledger: ledger)
        }
        #expect(pipe.occupancy == 0)
        #expect(iterator.count == 4096)
    }

    @Test("memory no key covers, after SGEs were built: every kind", arguments: WholeBuffer.kinds)
    func unregistered(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        // The last 16 pages of the mapping, and all but the first 200 pool pages, have no key.
        var table = regionTable(over: whole.mappingRange.lowerBound..<whole.mappingRange.upperBound - 16 * 4096, cuts: [5])
        let pool = whole.poolRange
        try table.insert(.init(coverage: pool.lowerBound..<pool.lowerBound + 200 * 4096, lkey: 50, access: .all))
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(kind, .source)
        let firstGap = coalesced(remainingRanges(iterator)).compactMap { range -> UInt? in
            var address = range.address
            while address < range.address + UInt(range.length) {
                if !table.regions.contains(where: { $0.coverage.contains(address) }) { return address }
                address = (address & ~pageMask) + UInt(pageSize)
            }
            return nil
        }.first!
        expectNoTrace(&iterator, keys: table, ledger: ledger, error: .unregisteredMemory(address: firstGap), maxSGEs: 1000)
    }

    @Test("a destination needs LOCAL_WRITE")
    func accessDenied() throws {
        let whole = WholeBuffer()
        let keys = SingleKeyResolver(lkey: 3, coverage: whole.mappingRange, access: [.remoteRead])
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(.ubuf, .destination)
        expectNoTrace(&iterator, keys: keys, ledger: ledger,
                      error: .accessDenied(address: whole.mappingRange.lowerBound, lkey: 3, missing: .localWrite))
        var source = whole.iterator(.ubuf, .source)
        var sges: [SGE] = []
        #expect(try source.extract(maxSize: .max, into: &sges, maxSGEs: 4, keys: keys, ledger: ledger) == whole.count)
        source.release(extractedSGEs: sges, keys: keys, ledger: ledger)
    }

    @Test("the pin limit, with MR-cache references taken first")
    func pinLimit() throws {
        // Regions of at most one segment: a lookup would otherwise register all the
        // segments whose pages touch as one region, and the call take one reference.
        var attributes = SoftVerbs.defaultAttributes
        attributes.maxMemoryRegionSize = WholeBuffer.segmentSize
        let verbs = try VerbsPair(attributes: attributes)
        let whole = WholeBuffer()
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact, limit: 100)
        var iterator = whole.iterator(.iovec, .source)
        // The whole call's pages are pinned at once (16 SGEs of 16 pages), all or none.
        expectNoTrace(&iterator, keys: cache, ledger: ledger, error: .iterator(.pinLimitExceeded(requested: 256, available: 100)),
                      references: { cache.referenceCount })
        #expect(cache.statistics.misses == 16)
        var pieces = try IOIterator(iovecs: UnsafeBufferPointer(rebasing: whole.segments[0..<8]), direction: .source)
        let twoRegions = regionTable(over: whole.mappingRange, cuts: [80])
        expectNoTrace(&pieces, keys: twoRegions, ledger: ledger, error: .iterator(.pinLimitExceeded(requested: 128, available: 100)))
    }

    @Test("an MR-cache registration that fails releases the references already taken")
    func registrationFails() throws {
        let verbs = try VerbsPair()
        let memory = PlainBuffer(pages: 64)
        let cache = MRCache(domain: verbs.domain)
        let segments = [iovec(iov_base: memory.bytes.baseAddress, iov_len: 5000),
                        iovec(iov_base: memory.bytes.baseAddress! + 40960, iov_len: 100)]
        try segments.withUnsafeBufferPointer { (segments) throws -> Void in
            let ledger = PinLedger(mode: .exact)
            var iterator = try IOIterator(iovecs: segments, direction: .source)
            verbs.device.inject(.registration(nth: 2))
            let refused = VerbsError(.registerMemory, errno: ENOMEM, "")
            expectNoTrace(&iterator, keys: cache, ledger: ledger, error: .registrationFailed(refused),
                          references: { cache.referenceCount })
            #expect(cache.statistics.registrations == 1)
            var sges: [SGE] = []
            #expect(try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 4, keys: cache, ledger: ledger) == 5100)
            #expect(cache.referenceCount == 2)
            iterator.release(extractedSGEs: sges, keys: cache, ledger: ledger)
            #expect(cache.referenceCount == 0)
            #expect(ledger.isEmpty)
        }
    }
}
