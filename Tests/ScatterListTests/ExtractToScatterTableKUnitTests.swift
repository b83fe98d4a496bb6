import IterExtract
import ScatterList
import TestKit
import Testing

/// Ports of the KUnit `iov_kunit_extract_to_sg_*` cases (lib/tests/kunit_iov_iter.c):
/// max entries 0, then 1 entry, then all but a 16-page tail, then the tail; mark the
/// end, copy out through the table and compare with the pattern byte for byte.
@Suite("extract to a scatter table: KUnit ports")
struct ExtractToScatterTableKUnitTests {
    @Test("the KUnit protocol yields the pattern, adds nothing at 0 entries, and leaves no pins", arguments: KUnitSource.allCases)
    func kunitProtocol(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        try source.withIterator(buffer) { iterator, expected in
            let table = ScatterTable(reservingCapacity: 600)
            let chunks = table.chunkCount
            let total = iterator.count
            #expect(total == expected.count)

            #expect(try iterator.extract(maxSize: total, into: table, maxEntries: 0, ledger: ledger) == 0)
            #expect(table.isEmpty && iterator.count == total && ledger.isEmpty)

            let first = try iterator.extract(maxSize: total, into: table, maxEntries: 1, ledger: ledger)
            #expect(first > 0 && table.count == 1 && table[0].length == first)
            #expect(iterator.count == total - first)

            let tail = 16 * pageSize
            let middle = try iterator.extract(maxSize: iterator.count - tail, into: table, maxEntries: 599, ledger: ledger)
            #expect(middle == total - first - tail && iterator.count == tail)

            let rest = try iterator.extract(maxSize: .max, into: table, maxEntries: 599, ledger: ledger)
            #expect(rest == tail && iterator.count == 0)
            table.markEnd()

            #expect(table.chunkCount == chunks, "extraction within the reserved capacity added a chunk")
            #expect(table.byteCount == total)
            #expect(copiedBytes(of: table) == expected)
            #expect(entryBytes(table) == expected)
            #expect(table.last?.isEnd == true && table.dropLast().allSatisfy { !$0.isEnd })
            for entry in table {
                #expect(entry.length > 0)
                switch source {
                case .kvec, .ubuf, .folioq, .xarray:
                    // One page per entry: the KUnit buffer's folios are single pages.
                    #expect(entry.offset + entry.length <= pageSize, "\(entry) crosses a page")
                case .bvec:
                    break
                }
            }
            if source == .bvec {
                // One entry per non-empty bio_vec, whatever its length.
                // One entry per bio_vec (each spans 64 pages); the tail call splits the last.
                let bvecs = KUnitSource.wholeBufferBVecs(buffer)
                #expect(table.count == bvecs.count + 1)
                #expect(Array(table.prefix(bvecs.count - 1).map(\.length)) == bvecs.dropLast().map(\.length))
            }
            #expect(table.allSatisfy { $0.isPinned == (source == .ubuf) })
            if source == .ubuf {
                #expect(ledger.pinnedPageCount == table.count)
            }
            table.releasePins(ledger: ledger)
            #expect(ledger.isEmpty)
            #expect(table.allSatisfy { !$0.isPinned })
        }
    }
}
