import Glibc
import IterExtract
import RDMASGE
import TestKit
import Testing

/// The SGEs extraction must produce: the iterator's ranges merged where contiguous,
/// split where the region changes, merged again across regions that share a key.
func expectedSGEs(_ ranges: [MemoryRange], regions: RegionTable) -> [SGE] {
    var result: [SGE] = []
    for range in coalesced(ranges) {
        var address = range.address
        var left = range.length
        while left > 0 {
            let region = regions.regions.first { $0.coverage.contains(address) }!
            let n = min(left, Int(region.coverage.upperBound - address))
            if let last = result.last, last.address + UInt64(last.length) == UInt64(address), last.lkey == region.lkey {
                result[result.count - 1].length += UInt32(n)
            } else {
                result.append(sge(address, n, region.lkey))
            }
            address += UInt(n)
            left -= n
        }
    }
    return result
}

/// The ranges an iterator still describes, read without moving it.
func remainingRanges(_ iterator: IOIterator) -> [MemoryRange] {
    var ranges: [MemoryRange] = []
    iterator.walk(maxBytes: .max) { range in
        ranges.append(range)
        return range.length
    }
    return ranges
}

/// Regions over `range` cut at the given page offsets, keys 1, 2, …
func regionTable(over range: Range<UInt>, cuts: [Int], access: AccessFlags = .all) -> RegionTable {
    var table = RegionTable()
    var start = range.lowerBound
    for (i, end) in (cuts.map { range.lowerBound + UInt($0 * pageSize) } + [range.upperBound]).enumerated() {
        try! table.insert(.init(coverage: start..<end, lkey: UInt32(i + 1), access: access))
        start = end
    }
    return table
}

@Suite("Extraction to SGEs")
struct ExtractionTests {
    @Test("every kind: SGEs are the iterator's ranges, merged and split at region boundaries", arguments: WholeBuffer.kinds)
    func everyKind(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        // Cuts inside the mapping and the pool force splits; both views are covered.
        var table = regionTable(over: whole.mappingRange, cuts: [1, 37, 100, 101])
        for region in regionTable(over: whole.poolRange, cuts: [3, 64, 130]).regions {
            try table.insert(.init(coverage: region.coverage, lkey: region.lkey + 100, access: region.access))
        }
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(kind, .source)
        let expected = expectedSGEs(remainingRanges(iterator), regions: table)
        var sges: [SGE] = []
        sges.reserveCapacity(expected.count)
        let bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1000, keys: table, ledger: ledger)
        #expect(bytes == whole.count)
        #expect(iterator.count == 0)
        #expect(sges == expected)
        #expect(sges.count < 256, "contiguous memory merges")
        #expect(ledger.pinnedPageCount == (kind.isUserBacked ? 256 : 0))
        iterator.release(extractedSGEs: sges, keys: table, ledger: ledger)
        #expect(ledger.isEmpty)
    }

    @Test("KVEC: contiguous segments merge, a boundary splits, a gap starts a new SGE")
    func mergeSplitGap() throws {
        let memory = PlainBuffer(pages: 16)
        let a = memory.address
        var table = RegionTable()
        try table.insert(.init(coverage: a..<a + 4096, lkey: 1, access: []))
        try table.insert(.init(coverage: a + 4096..<a + 65536, lkey: 2, access: []))
        let segments = [iovec(iov_base: UnsafeMutableRawPointer(bitPattern: a), iov_len: 100),
                        iovec(iov_base: UnsafeMutableRawPointer(bitPattern: a + 100), iov_len: 4900),
                        iovec(iov_base: UnsafeMutableRawPointer(bitPattern: a + 8192), iov_len: 4096)]
        try segments.withUnsafeBufferPointer { (segments) throws -> Void in
            var iterator = try IOIterator(kvecs: segments, direction: .source)
            var sges: [SGE] = []
            #expect(try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 8, keys: table) == 9096)
            #expect(sges == [sge(a, 4096, 1), sge(a + 4096, 904, 2), sge(a + 8192, 4096, 2)])
        }
    }

    @Test("adjacent regions that share an lkey give one SGE")
    func sharedKeyMerges() throws {
        let memory = PlainBuffer(pages: 4)
        let a = memory.address
        var table = RegionTable()
        try table.insert(.init(coverage: a..<a + 4096, lkey: 7, access: []))
        try table.insert(.init(coverage: a + 4096..<a + 16384, lkey: 7, access: []))
        var iterator = try IOIterator(ubufAt: a + 10, count: 10000, direction: .source)
        var sges: [SGE] = []
        let ledger = PinLedger(mode: .exact)
        #expect(try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 8, keys: table, ledger: ledger) == 10000)
        #expect(sges == [sge(a + 10, 10000, 7)])
        #expect(ledger.pinnedPageCount == 3)
        iterator.release(extractedSGEs: sges, keys: table, ledger: ledger)
        #expect(ledger.isEmpty)
    }

    @Test("stops at maxSGEs and maxSize, advancing exactly as far as described", arguments: WholeBuffer.kinds)
    func earlyStop(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        var table = regionTable(over: whole.mappingRange, cuts: Array(stride(from: 8, to: 256, by: 8)))
        for region in regionTable(over: whole.poolRange, cuts: Array(stride(from: 8, to: 256, by: 8))).regions {
            try table.insert(.init(coverage: region.coverage, lkey: region.lkey + 100, access: region.access))
        }
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(kind, .source)
        let expected = expectedSGEs(remainingRanges(iterator), regions: table)
        var collected: [SGE] = []
        var calls = 0
        while iterator.count > 0 {
            var sges: [SGE] = []
            let before = iterator.count
            let maxSize = calls % 2 == 0 ? 50_000 : .max
            let bytes = try iterator.extract(maxSize: maxSize, into: &sges, maxSGEs: 3, keys: table, ledger: ledger)
            #expect(bytes > 0 && bytes <= maxSize)
            #expect(sges.count <= 3)
            #expect(sges.reduce(0) { $0 + Int($1.length) } == bytes)
            #expect(iterator.count == before - bytes)
            collected += sges
            iterator.release(extractedSGEs: sges, keys: table, ledger: ledger)
            calls += 1
        }
        #expect(ledger.isEmpty)
        // Pieces cut by the limits re-merge into exactly the expected SGEs.
        var merged: [SGE] = []
        for sge in collected {
            if let last = merged.last, last.address + UInt64(last.length) == sge.address, last.lkey == sge.lkey {
                merged[merged.count - 1].length += sge.length
            } else {
                merged.append(sge)
            }
        }
        #expect(merged == expected)
    }

    @Test("maxSize 0 or maxSGEs 0 describes nothing and changes nothing")
    func zeroLimits() throws {
        let whole = WholeBuffer()
        let keys = SingleKeyResolver(lkey: 1, coverage: whole.mappingRange, access: .all)
        var iterator = whole.iterator(.iovec, .source)
        var sges = [sge(1, 1, 1)]
        let ledger = PinLedger(mode: .exact)
        #expect(try iterator.extract(maxSize: 0, into: &sges, maxSGEs: 4, keys: keys, ledger: ledger) == 0)
        #expect(try iterator.extract(maxSize: 100, into: &sges, maxSGEs: 0, keys: keys, ledger: ledger) == 0)
        #expect(sges == [sge(1, 1, 1)])
        #expect(iterator.count == whole.count)
        #expect(ledger.isEmpty)
    }

    /// Extracts all of `iterator` call by call; checks that each call describes
    /// `maxReadWriteCount` bytes or what is left, in SGEs of no zero length, and
    /// returns every call's SGEs (released again) in order.
    private func extractAll(_ iterator: inout IOIterator, keys: SingleKeyResolver, ledger: PinLedger = .shared,
                            sourceLocation: SourceLocation = #_sourceLocation) throws -> [[SGE]] {
        var calls: [[SGE]] = []
        while iterator.count > 0 {
            let left = iterator.count
            var sges: [SGE] = []
            sges.reserveCapacity(8)
            let bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 8, keys: keys, ledger: ledger)
            #expect(bytes == Swift.min(left, maxReadWriteCount), sourceLocation: sourceLocation)
            #expect(sges.reduce(0) { $0 + Int($1.length) } == bytes, sourceLocation: sourceLocation)
            #expect(sges.allSatisfy { $0.length > 0 }, sourceLocation: sourceLocation)
            if iterator.isUserBacked { #expect(ledger.pinnedPageCount == SGE.pageCount(of: sges), sourceLocation: sourceLocation) }
            iterator.release(extractedSGEs: sges, keys: keys, ledger: ledger)
            calls.append(sges)
            if bytes == 0 { break }
        }
        return calls
    }

    private func ranges(_ sges: [SGE]) -> [MemoryRange] {
        sges.map { MemoryRange(address: UInt($0.address), length: Int($0.length)) }
    }

    @Test("a call describes at most maxReadWriteCount bytes, so no SGE reaches UInt32.max")
    func lengthLimit() throws {
        // KVEC extraction only lists addresses, so a range this large needs no memory.
        let base: UInt = 1 << 40
        let length = Int(UInt32.max) + 5000
        let keys = SingleKeyResolver(lkey: 9, coverage: base..<base + (1 << 34), access: [])
        let segment = [iovec(iov_base: UnsafeMutableRawPointer(bitPattern: base), iov_len: length)]
        try segment.withUnsafeBufferPointer { (segment) throws -> Void in
            var iterator = try IOIterator(kvecs: segment, direction: .source)
            let calls = try extractAll(&iterator, keys: keys)
            let step = UInt64(maxReadWriteCount)
            #expect(calls == [[SGE(address: UInt64(base), length: UInt32(step), lkey: 9)],
                              [SGE(address: UInt64(base) + step, length: UInt32(step), lkey: 9)],
                              [SGE(address: UInt64(base) + 2 * step, length: UInt32(length - 2 * maxReadWriteCount), lkey: 9)]])
        }
    }

    @Test("contiguous segments merge into one SGE up to the call's maxReadWriteCount bytes")
    func lengthLimitAcrossSegments() throws {
        let base: UInt = 1 << 40
        let half = 3 << 30
        let keys = SingleKeyResolver(lkey: 9, coverage: base..<base + (1 << 34), access: [])
        let segments = [iovec(iov_base: UnsafeMutableRawPointer(bitPattern: base), iov_len: half),
                        iovec(iov_base: UnsafeMutableRawPointer(bitPattern: base + UInt(half)), iov_len: half),
                        iovec(iov_base: UnsafeMutableRawPointer(bitPattern: base + UInt(4 * half)), iov_len: 10)]
        try segments.withUnsafeBufferPointer { (segments) throws -> Void in
            var iterator = try IOIterator(kvecs: segments, direction: .source)
            let calls = try extractAll(&iterator, keys: keys)
            // 6 GiB + 10 bytes: three full calls of one SGE each (the second merges across the
            // segment boundary), and a last call for the rest of both segments.
            #expect(calls.count == 4)
            #expect(calls.dropLast().allSatisfy { $0.count == 1 })
            #expect(coalesced(ranges(calls.flatMap { $0 })) == [MemoryRange(address: base, length: 2 * half),
                                                             MemoryRange(address: base + UInt(4 * half), length: 10)])
            #expect(iterator.count == 0)
        }
    }

    @Test("more than UInt32.max bytes of separate segments, with empty NULL segments between them",
          arguments: [IOIteratorKind.kvec, .iovec])
    func manyGigabytesAndEmptySegments(kind: IOIteratorKind) throws {
        // Segments longer than a call can describe, and empty segments outside the region
        // left to the general path; neither may show in the SGEs.
        let base: UInt = 1 << 40
        let gap = 1 << 20
        let size = (3 << 30) - 7
        let keys = SingleKeyResolver(lkey: 9, coverage: base..<base + (1 << 36), access: [])
        var segments: [iovec] = []
        var expected: [MemoryRange] = []
        var address = base + 5
        var total = 0
        for index in 0..<5 {
            let length = index == 2 ? Int(UInt32.max) + 3 : size
            segments.append(iovec(iov_base: UnsafeMutableRawPointer(bitPattern: address), iov_len: length))
            expected.append(MemoryRange(address: address, length: length))
            if index % 2 == 0 { segments.append(iovec(iov_base: nil, iov_len: 0)) }
            address += UInt(length + gap)
            total += length
        }
        try segments.withUnsafeBufferPointer { (segments) throws -> Void in
            var iterator = kind == .iovec ? try IOIterator(iovecs: segments, direction: .source)
                                          : try IOIterator(kvecs: segments, direction: .source)
            let ledger = PinLedger(mode: .counting)
            let calls = try extractAll(&iterator, keys: keys, ledger: ledger)
            #expect(calls.count == (total + maxReadWriteCount - 1) / maxReadWriteCount)
            #expect(coalesced(ranges(calls.flatMap { $0 })) == expected)
            #expect(iterator.count == 0)
            #expect(ledger.isEmpty)
        }
    }

    @Test("appending within reserved capacity keeps the caller's storage")
    func noReallocation() throws {
        let whole = WholeBuffer()
        let keys = SingleKeyResolver(lkey: 1, coverage: whole.poolRange, access: .all)
        var iterator = whole.iterator(.bvec, .source)
        var sges: [SGE] = []
        sges.reserveCapacity(8)
        let before = sges.withUnsafeBufferPointer { $0.baseAddress }
        _ = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 8, keys: keys)
        #expect(sges.withUnsafeBufferPointer { $0.baseAddress } == before)
    }
}
