import IterExtract
import ScatterList
import TestKit
import Testing

/// One random iterator fixture: a kind and a seed.
struct RandomCase: Sendable, CustomStringConvertible {
    var kind: IOIteratorKind
    var seed: UInt64
    var description: String { "\(kind) seed \(seed)" }

    static let all: [RandomCase] = RandomIterator.kinds.flatMap { kind in (1...8).map { RandomCase(kind: kind, seed: $0) } }
}

@Suite("extract to a scatter table: properties against the reference model")
struct ExtractToScatterTablePropertyTests {
    @Test("any sequence of (maxSize, maxEntries) calls describes exactly the model's bytes", arguments: RandomCase.all)
    func randomCalls(_ fixture: RandomCase) throws {
        let source = RandomIterator(kind: fixture.kind, seed: fixture.seed)
        let ledger = PinLedger(mode: .exact)
        let table = ScatterTable(chunkCapacity: source.next(in: 2...9))
        var iterator = source.makeIterator()
        var model = source.model
        var calls = 0
        while iterator.count > 0 {
            calls += 1
            try #require(calls < 10_000, "no progress")
            let maxSize = source.next(in: 0...(source.totalCount / 3 + 1))
            let maxEntries = source.next(in: 0...6)
            let granularity: ScatterGranularity = source.next(in: 0...1) == 0
                ? .kernel : .merged(maxSegment: pageSize * source.next(in: 1...8))
            let start = table.count
            let earlier = Array(table)
            let before = iterator.count
            let n = try iterator.extract(maxSize: maxSize, into: table, maxEntries: maxEntries,
                                         granularity: granularity, ledger: ledger)
            let added = Array(table.dropFirst(start))
            #expect(Array(table.prefix(start)) == earlier, "earlier entries changed")
            #expect(n == added.reduce(0) { $0 + $1.length }, "bytes reported ≠ bytes added")
            #expect(iterator.count == before - n)
            #expect(added.count <= maxEntries && n <= maxSize)
            #expect(added.allSatisfy { $0.length > 0 && !$0.isEnd })
            if maxSize > 0 && maxEntries > 0 { #expect(n > 0, "a call with room made no progress") }
            #expect(entryBytes(added) == model.nextBytes(n))
            model.advance(n)
            if case .merged(let maxSegment) = granularity {
                #expect(added.allSatisfy { $0.length <= maxSegment })
            } else if [.ubuf, .iovec, .kvec].contains(fixture.kind) {
                #expect(added.allSatisfy { $0.offset + $0.length <= pageSize })
            }
        }
        #expect(model.count == 0)
        #expect(entryBytes(table) == source.model.nextBytes(source.totalCount))
        #expect(ledger.pinnedPageCount == (fixture.kind.isUserBacked ? table.reduce(0) { $0 + $1.pages.count } : 0))
        table.releasePins(ledger: ledger)
        #expect(ledger.isEmpty)
    }

    @Test("merged and kernel granularity describe the same bytes, merged in no more entries", arguments: RandomCase.all)
    func mergedVersusKernel(_ fixture: RandomCase) throws {
        let source = RandomIterator(kind: fixture.kind, seed: fixture.seed)
        let ledger = PinLedger(mode: .exact)
        var tables: [ScatterTable] = []
        for granularity in [ScatterGranularity.kernel, .merged(maxSegment: 1 << 20), .merged(maxSegment: 2 * pageSize)] {
            var iterator = source.makeIterator()
            let table = ScatterTable()
            #expect(try iterator.extract(maxSize: .max, into: table, maxEntries: 100_000, granularity: granularity,
                                         ledger: ledger) == source.totalCount)
            #expect(entryBytes(table) == source.model.nextBytes(source.totalCount))
            tables.append(table)
        }
        #expect(tables[1].count <= tables[0].count && tables[1].count <= tables[2].count)
        #expect(tables[2].allSatisfy { $0.length <= 2 * pageSize })
        // Merged entries are maximal: no entry continues its predecessor within the limit.
        for (previous, entry) in zip(tables[1], tables[1].dropFirst()) {
            #expect(previous.address + UInt(previous.length) != entry.address || previous.length + entry.length > 1 << 20)
        }
        for table in tables { table.releasePins(ledger: ledger) }
        #expect(ledger.isEmpty)
    }

    @Test("extraction chains correctly at every chunk size", arguments: Array(2...130))
    func chunkSizes(chunkCapacity: Int) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        try KUnitSource.ubuf.withIterator(buffer) { iterator, expected in
            let table = ScatterTable(chunkCapacity: chunkCapacity)
            let random = RandomIterator(kind: .kvec, seed: UInt64(chunkCapacity))
            var kvec = random.makeIterator()
            try kvec.extract(maxSize: .max, into: table, maxEntries: 10_000, ledger: ledger)
            let prefix = entryBytes(table)
            let start = table.count
            while iterator.count > 0 {
                try iterator.extract(maxSize: 3 * pageSize, into: table, maxEntries: chunkCapacity, ledger: ledger)
            }
            table.markEnd()
            #expect(copiedBytes(of: table) == prefix + expected)
            #expect(table.count == start + 256)
            let links = table.slots.enumerated().filter { $0.element.isChainLink }.map(\.offset)
            #expect(links == Array(stride(from: chunkCapacity - 1, to: table.slots.count, by: chunkCapacity)))
            var walked = 0
            var position = table.firstPosition
            while let current = position { walked += 1; position = table.next(after: current) }
            #expect(walked == table.count)
            table.releasePins(ledger: ledger)
        }
        #expect(ledger.isEmpty)
    }
}
