import IterExtract
import ScatterList
import TestKit
import Testing

@Suite("entry counts: kernel versus merged granularity on the KUnit fixtures")
struct EntryCountTests {
    static let granularities: [(String, ScatterGranularity)] = [
        ("kernel", .kernel), ("merged 64 KiB", .merged(maxSegment: 1 << 16)), ("merged unlimited", .merged(maxSegment: ScatterTable.unlimitedSegment)),
    ]

    @Test("merged granularity describes the same bytes in fewer entries", arguments: KUnitSource.allCases)
    func entryCounts(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        var counts: [Int] = []
        for (_, granularity) in Self.granularities {
            try source.withIterator(buffer) { iterator, expected in
                let table = ScatterTable()
                try iterator.extract(maxSize: .max, into: table, maxEntries: 100_000, granularity: granularity, ledger: ledger)
                #expect(copiedBytes(of: table) == expected)
                counts.append(table.count)
                table.releasePins(ledger: ledger)
            }
        }
        // The KUnit buffer's pages form four runs of 64 contiguous frames (the halves
        // are swapped): merging must shrink every table made page by page or folio by
        // folio.
        #expect(counts[2] <= counts[1])
        if source == .bvec {
            // Each bio_vec is already a maximal run of contiguous frames; a 64 KiB cap splits them.
            #expect(counts[2] == counts[0] && counts[1] == buffer.count / (1 << 16))
        } else {
            #expect(counts[1] < counts[0] && counts[2] < counts[1])
        }
        let report = zip(Self.granularities.map(\.0), counts).map { "\($0) \($1)" }.joined(separator: ", ")
        print("entry counts for \(source): \(report)")
        #expect(ledger.isEmpty)
    }
}
