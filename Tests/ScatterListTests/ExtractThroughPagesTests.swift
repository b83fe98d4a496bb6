import IterExtract
import ScatterList
import TestKit
import Testing

@Suite("the two-step path: extract pages, then build the table from them")
struct ExtractThroughPagesTests {
    @Test("the two-step path describes the model's bytes, appends without touching earlier entries, and pins like the direct path",
          arguments: RandomCase.all)
    func matchesModel(_ fixture: RandomCase) throws {
        let source = RandomIterator(kind: fixture.kind, seed: fixture.seed)
        let ledger = PinLedger(mode: .exact)
        let table = ScatterTable(chunkCapacity: 5)
        table.append(ScatterEntry(page: Page(frame: 0x77777), offset: 0, length: pageSize))
        var iterator = source.makeIterator()
        var model = source.model
        var calls = 0
        while iterator.count > 0 {
            calls += 1
            try #require(calls < 10_000, "no progress")
            let maxSize = source.next(in: 1...(source.totalCount / 2 + 1))
            let maxPages = source.next(in: 1...9)
            let start = table.count
            let before = iterator.count
            let n = try iterator.extractThroughPages(maxSize: maxSize, into: table, maxPages: maxPages,
                                                     maxSegment: pageSize * source.next(in: 1...4), ledger: ledger)
            let added = Array(table.dropFirst(start))
            #expect(n > 0 || fixture.kind == .xarray)
            if n == 0 { break }
            #expect(n == added.reduce(0) { $0 + $1.length } && iterator.count == before - n)
            #expect(added.reduce(0) { $0 + $1.pages.count } <= maxPages)
            #expect(entryBytes(added) == model.nextBytes(n))
            #expect(added.allSatisfy { $0.isPinned == fixture.kind.isUserBacked && !$0.isEnd })
            model.advance(n)
        }
        #expect(table[0] == ScatterEntry(page: Page(frame: 0x77777), offset: 0, length: pageSize))
        #expect(iterator.count == 0)
        table.releasePins(ledger: ledger)
        #expect(ledger.isEmpty)
    }

    @Test("on the KUnit fixtures, the two-step path and the direct path describe the same bytes", arguments: KUnitSource.allCases)
    func sameBytesAsDirect(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        try source.withIterator(buffer) { iterator, expected in
            let table = ScatterTable()
            while iterator.count > 0 {
                let n = try iterator.extractThroughPages(maxSize: .max, into: table, maxPages: 64, ledger: ledger)
                #expect(n > 0)
            }
            #expect(copiedBytes(of: table) == expected)
            table.releasePins(ledger: ledger)
        }
        #expect(ledger.isEmpty)
    }
}
