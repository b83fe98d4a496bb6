import Glibc
import IterExtract
import RDMASGE
import Synchronization
import TestKit
import Testing

/// A region table that counts its lookups and, when `retainsRegions`, the references
/// they take, as an MR cache does: extraction must then ask it for every SGE and
/// release exactly what it took. With `retainsInBatches` it takes references in
/// batches too, and extraction asks it once per region.
final class CountingResolver: KeyResolver, @unchecked Sendable {
    let table: RegionTable
    let retainsRegions: Bool
    let retainsInBatches: Bool
    let references = Mutex([UInt32: Int]())
    let lookups = Atomic(0)

    init(_ table: RegionTable, retainsRegions: Bool = true, retainsInBatches: Bool = false) {
        self.table = table
        self.retainsRegions = retainsRegions
        self.retainsInBatches = retainsInBatches
    }

    func retain(lkey: UInt32, count: Int) {
        precondition(retainsRegions && retainsInBatches, "extraction batched references on a resolver that does not batch")
        references.withLock { references in
            precondition(references[lkey, default: 0] > 0, "retained lkey \(lkey) without holding a reference")
            references[lkey]! += count
        }
    }

    func resolve(_ range: MemoryRange, access: AccessFlags, retaining: Bool) throws(RDMAError) -> KeyResolution {
        let resolution = try table.resolve(range, access: access, retaining: retaining)
        lookups.add(1, ordering: .relaxed)
        if retaining, retainsRegions { references.withLock { $0[resolution.lkey, default: 0] += 1 } }
        return resolution
    }

    func release(lkey: UInt32) {
        guard retainsRegions else { return }
        references.withLock { references in
            precondition(references[lkey, default: 0] > 0, "released lkey \(lkey) without a reference")
            references[lkey]! -= 1
        }
    }

    var held: Int { references.withLock { $0.values.reduce(0, +) } }
}

@Suite("Extraction to SGEs: the array's capacity changes nothing but allocation")
struct ExtractionCapacityTests {
    /// Regions of 3 pages over both views of the buffer, so every kind needs dozens of SGEs.
    static func manyRegions(_ whole: WholeBuffer) throws -> RegionTable {
        var table = regionTable(over: whole.mappingRange, cuts: Array(stride(from: 3, to: 256, by: 3)))
        for region in regionTable(over: whole.poolRange, cuts: Array(stride(from: 3, to: 256, by: 3))).regions {
            try table.insert(.init(coverage: region.coverage, lkey: region.lkey + 1000, access: region.access))
        }
        return table
    }

    @Test("the same SGEs from an empty array, a small one and a reserved one", arguments: WholeBuffer.kinds)
    func sameSGEs(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        let table = try Self.manyRegions(whole)
        let expected = expectedSGEs(remainingRanges(whole.iterator(kind, .source)), regions: table)
        #expect(expected.count > 64, "enough SGEs to outgrow the first rounds")
        for capacity in [0, 1, 17, expected.count] {
            var iterator = whole.iterator(kind, .source)
            var sges: [SGE] = [sge(1, 1, 99)]   // extraction appends after what is there
            sges.reserveCapacity(capacity)
            let ledger = PinLedger(mode: .exact)
            let bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 10_000, keys: table, ledger: ledger)
            #expect(bytes == whole.count)
            #expect(Array(sges.dropFirst()) == expected, "capacity \(capacity)")
            iterator.release(extractedSGEs: sges.dropFirst(), keys: table, ledger: ledger)
            #expect(ledger.isEmpty)
        }
    }

    @Test("a counting resolver, batching or not, gets one reference per SGE and every one back", arguments: WholeBuffer.kinds, [false, true])
    func countingResolver(kind: IOIteratorKind, batches: Bool) throws {
        let whole = WholeBuffer()
        let keys = CountingResolver(try Self.manyRegions(whole), retainsInBatches: batches)
        let expected = expectedSGEs(remainingRanges(whole.iterator(kind, .source)), regions: keys.table)
        for capacity in [0, 5, expected.count] {
            var iterator = whole.iterator(kind, .source)
            var sges: [SGE] = []
            sges.reserveCapacity(capacity)
            _ = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 10_000, keys: keys)
            #expect(sges == expected, "capacity \(capacity)")
            #expect(keys.held == sges.count, "one reference per SGE")
            iterator.release(extractedSGEs: sges, keys: keys)
            #expect(keys.held == 0)
        }
    }

    @Test("a resolver that counts nothing is asked once per region, not once per piece")
    func oneLookupPerRegion() throws {
        let memory = PlainBuffer(pages: 64)
        let table = regionTable(over: memory.address..<memory.address + UInt(64 * pageSize), cuts: [32])
        let counting = CountingResolver(table)
        let uncounted = CountingResolver(table, retainsRegions: false)
        let batching = CountingResolver(table, retainsInBatches: true)
        // 200 separate 100-byte segments, 1 KiB apart: 200 SGEs in two regions.
        let segments = (0..<200).map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: memory.address + UInt($0 * 1024)), iov_len: 100) }
        try segments.withUnsafeBufferPointer { segments throws in
            var results: [[SGE]] = []
            for keys in [counting, uncounted, batching] {
                var iterator = try IOIterator(kvecs: segments, direction: .source)
                var sges: [SGE] = []
                _ = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1000, keys: keys)
                #expect(keys.held == (keys.retainsRegions ? 200 : 0), "one reference per SGE")
                iterator.release(extractedSGEs: sges, keys: keys)
                #expect(keys.held == 0)
                results.append(sges)
            }
            #expect(results[0].count == 200 && results[0] == results[1] && results[0] == results[2])
            #expect(results[0].map(\.lkey) == Array(repeating: 1, count: 128) + Array(repeating: 2, count: 72))
            #expect(counting.lookups.load(ordering: .relaxed) == 200, "a counting resolver is asked for every SGE")
            #expect(uncounted.lookups.load(ordering: .relaxed) == 2, "one lookup per region")
            #expect(batching.lookups.load(ordering: .relaxed) == 2, "a batching resolver too")
        }
    }

    @Test("memory no key covers, met after the array grew: an error, and nothing taken or moved",
          arguments: WholeBuffer.kinds)
    func failureAfterGrowing(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        // Every region but the last of each view: the error comes after dozens of SGEs.
        var table = RegionTable()
        for region in try Self.manyRegions(whole).regions
        where region.coverage.upperBound != whole.mappingRange.upperBound && region.coverage.upperBound != whole.poolRange.upperBound {
            try table.insert(region)
        }
        for keys in [CountingResolver(table), CountingResolver(table, retainsRegions: false),
                     CountingResolver(table, retainsInBatches: true)] {
            var iterator = whole.iterator(kind, .source)
            let before = remainingRanges(iterator)
            let ledger = PinLedger(mode: .exact)
            var sges: [SGE] = [sge(1, 1, 99)]
            #expect {
                _ = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 10_000, keys: keys, ledger: ledger)
            } throws: { error in
                guard case .unregisteredMemory = error as? RDMAError else { return false }
                return true
            }
            #expect(keys.lookups.load(ordering: .relaxed) > 1, "the error came after other lookups")
            #expect(sges == [sge(1, 1, 99)], "the output is as it was")
            #expect(iterator.count == whole.count && remainingRanges(iterator) == before, "the iterator did not move")
            #expect(ledger.isEmpty, "no pins are held")
            #expect(keys.held == 0, "no references are held")
        }
    }
}
