import Glibc
import IterExtract
import ScatterList
import TestKit
import Testing

/// Segments that alternate between a ``VirtualMapping`` (pages shown out of order,
/// found by translation) and plain pool memory (pages that are their own frames),
/// the two paths extraction takes per segment.
@Suite("extract to a scatter table: mapped and unmapped segments in one array")
struct ExtractMixedMappingTests {
    @Test("every byte lands in the right page, at both granularities, under any limits", arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func mixedSegments(seed: UInt64) throws {
        let pool = try PagePool(pageCount: 64)
        let mapped = try pool.allocatePages(count: 16, arrangement: .swappedHalves)
        let mapping = try VirtualMapping(pages: mapped, of: pool)
        let plain = try pool.allocatePages(count: 32)
        let plainBase = plain[0].baseAddress
        var random = SplitMix64(seed: seed)
        for i in 0..<mapping.bytes.count { mapping.bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 1) }
        for i in 0..<32 * pageSize { plainBase.storeBytes(of: UInt8(truncatingIfNeeded: i &* 13 &+ 5), toByteOffset: i, as: UInt8.self) }

        // Eight segments, alternating, each at an odd offset with 1 byte to 3 pages.
        var segments: [iovec] = []
        var expected: [UInt8] = []
        for i in 0..<8 {
            let base = i % 2 == 0 ? mapping.baseAddress : plainBase
            let room = i % 2 == 0 ? 16 * pageSize : 32 * pageSize
            let length = Int(random.next() % UInt64(3 * pageSize)) + 1
            let offset = Int(random.next() % UInt64(room - length))
            segments.append(iovec(iov_base: base + offset, iov_len: length))
            expected += UnsafeRawBufferPointer(start: base + offset, count: length)
        }
        for kind in [IOIteratorKind.kvec, .iovec] {
            for granularity in [ScatterGranularity.kernel, .merged(maxSegment: 2 * pageSize)] {
                let table = ScatterTable(chunkCapacity: 3)
                let ledger = PinLedger(mode: .exact)
                try segments.withUnsafeBufferPointer { (array) throws -> Void in
                    var iterator = kind == .kvec ? try IOIterator(kvecs: array, direction: .source)
                                                 : try IOIterator(iovecs: array, direction: .source)
                    while iterator.count > 0 {
                        let maxSize = Int(random.next() % UInt64(4 * pageSize)) + 1
                        let maxEntries = Int(random.next() % 4) + 1
                        let before = iterator.count
                        let n = try iterator.extract(maxSize: maxSize, into: table, maxEntries: maxEntries,
                                                     granularity: granularity, ledger: ledger)
                        #expect(n > 0 && n <= maxSize && iterator.count == before - n)
                    }
                }
                #expect(entryBytes(table) == expected, "\(kind) \(granularity) seed \(seed)")
                // A mapped address is not its own frame: its entries must name the pool's pages.
                #expect(table.allSatisfy { pool.contains($0.page) }, "\(kind) \(granularity) seed \(seed)")
                if granularity == .kernel {
                    #expect(table.allSatisfy { $0.offset + $0.length <= pageSize })
                } else {
                    #expect(table.allSatisfy { $0.length <= 2 * pageSize })
                }
                #expect(ledger.pinnedPageCount == (kind == .iovec ? table.reduce(0) { $0 + $1.pages.count } : 0))
                table.releasePins(ledger: ledger)
                #expect(ledger.isEmpty)
                table.removeAll()
            }
        }
        withExtendedLifetime(mapping) {}
    }
}
