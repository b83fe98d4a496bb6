import Glibc
import IterExtract
import ScatterList
import TestKit
import Testing

@Suite("extract to a scatter table: bad input, failures, and the kernel's 2026 bugs")
struct ExtractToScatterTableErrorTests {
    /// A table that already holds entries from a KVEC call.
    static func tableWithEarlierEntries(_ buffer: KUnitBuffer, capacity: Int = 300) throws -> ScatterTable {
        let table = ScatterTable(chunkCapacity: 16, reservingCapacity: capacity)
        let kvecs = buffer.kvecs([(0x10, 0x2010), (0x30000, 0x30100)])
        try kvecs.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(kvecs: segments, direction: .source)
            try iterator.extract(maxSize: .max, into: table, maxEntries: 10)
        }
        return table
    }

    @Test("DISCARD and PIPE are refused, before a zero maxSize or maxEntries is looked at (the kernel returns 0 first)")
    func notExtractable() throws {
        let table = ScatterTable()
        var discard = IOIterator(discarding: 100)
        #expect(throws: ScatterListError.iterator(.notExtractable(.discard))) {
            try discard.extract(maxSize: 100, into: table, maxEntries: 4)
        }
        #expect(throws: ScatterListError.iterator(.notExtractable(.discard))) {
            try discard.extract(maxSize: 0, into: table, maxEntries: 4)
        }
        #expect(throws: ScatterListError.iterator(.notExtractable(.discard))) {
            try discard.extract(maxSize: 100, into: table, maxEntries: 0)
        }
        #expect(throws: ScatterListError.iterator(.notExtractable(.discard))) {
            try discard.extractThroughPages(maxSize: 100, into: table, maxPages: 4)
        }
        #expect(discard.count == 100)
        let pool = try PagePool(pageCount: 4)
        let pipe = PagePipe(pool: pool)
        var pipeIterator = try IOIterator(pipe: pipe, count: 100)
        #expect(throws: ScatterListError.iterator(.notExtractable(.pipe))) {
            try pipeIterator.extract(maxSize: 100, into: table, maxEntries: 4)
        }
        #expect(throws: ScatterListError.iterator(.notExtractable(.pipe))) {
            try pipeIterator.extractThroughPages(maxSize: 100, into: table, maxPages: 4)
        }
        #expect(pipeIterator.count == 100 && pipe.occupancy == 0 && table.isEmpty)
    }

    @Test("a merged max segment below a page is refused with nothing changed", arguments: KUnitSource.allCases)
    func mergedBelowPage(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let table = try Self.tableWithEarlierEntries(buffer)
        let earlier = Array(table)
        let ledger = PinLedger(mode: .exact)
        try source.withIterator(buffer) { iterator, _ in
            let expected = try remainingEntries(of: iterator)
            #expect(throws: ScatterListError.maxSegmentBelowPage(pageSize - 1)) {
                try iterator.extract(maxSize: .max, into: table, maxEntries: 9, granularity: .merged(maxSegment: pageSize - 1),
                                     ledger: ledger)
            }
            #expect(throws: ScatterListError.maxSegmentBelowPage(10)) {
                try iterator.extractThroughPages(maxSize: .max, into: table, maxPages: 9, maxSegment: 10, ledger: ledger)
            }
            #expect(try remainingEntries(of: iterator) == expected)
        }
        #expect(Array(table) == earlier && ledger.isEmpty)
    }

    @Test("a pin failure part-way leaves no trace: iterator, earlier entries and earlier pins are as they were",
          arguments: [ScatterGranularity.kernel, .merged(maxSegment: 1 << 16)])
    func pinFailureLeavesNoTrace(granularity: ScatterGranularity) throws {
        let buffer = KUnitBuffer()
        let table = try Self.tableWithEarlierEntries(buffer)
        let ledger = PinLedger(mode: .exact, limit: 12)
        try KUnitSource.ubuf.withIterator(buffer) { iterator, expected in
            // An earlier call that pins 5 pages and succeeds.
            #expect(try iterator.extract(maxSize: 5 * pageSize, into: table, maxEntries: 50, granularity: granularity,
                                         ledger: ledger) == 5 * pageSize)
            let earlier = Array(table)
            let chunks = table.chunkCount
            let position = try remainingEntries(of: iterator)
            #expect(ledger.pinnedPageCount == 5)
            #expect(throws: ScatterListError.self) {
                try iterator.extract(maxSize: 40 * pageSize, into: table, maxEntries: 50, granularity: granularity, ledger: ledger)
            }
            #expect(Array(table) == earlier && table.chunkCount == chunks)
            #expect(ledger.pinnedPageCount == 5)
            #expect(try remainingEntries(of: iterator) == position)
            #expect(iterator.count == expected.count - 5 * pageSize)
            // The two-step path fails the same way, also without a trace.
            #expect(throws: ScatterListError.iterator(.pinLimitExceeded(requested: 40, available: 7))) {
                try iterator.extractThroughPages(maxSize: 40 * pageSize, into: table, maxPages: 50, ledger: ledger)
            }
            #expect(Array(table) == earlier && ledger.pinnedPageCount == 5)
            #expect(try remainingEntries(of: iterator) == position)
            // Within the limit, the same call goes through.
            #expect(try iterator.extract(maxSize: 7 * pageSize, into: table, maxEntries: 50, granularity: granularity,
                                         ledger: ledger) == 7 * pageSize)
            table.releasePins(ledger: ledger)
        }
        #expect(ledger.isEmpty)
    }

    @Test("a pin failure in an IOVEC call that crosses segments removes every entry it added")
    func iovecPinFailure() throws {
        let buffer = KUnitBuffer()
        let ranges = [(from: 0x100, to: 0x3000), (from: 0x8000, to: 0x10000), (from: 0x20000, to: 0x28000)]
        let iovecs = buffer.kvecs(ranges)
        let ledger = PinLedger(mode: .exact, limit: 10)
        let table = ScatterTable(reservingCapacity: 64)
        try iovecs.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(iovecs: segments, direction: .source)
            let expected = try remainingEntries(of: iterator)
            #expect(expected.count == 3 + 8 + 8)
            #expect(throws: ScatterListError.self) {
                try iterator.extract(maxSize: .max, into: table, maxEntries: 64, ledger: ledger)
            }
            #expect(table.isEmpty && ledger.isEmpty)
            #expect(try remainingEntries(of: iterator) == expected)
            #expect(try iterator.extract(maxSize: .max, into: table, maxEntries: 10, ledger: ledger) == 0x2f00 + 7 * pageSize)
            #expect(ledger.pinnedPageCount == 10)
            table.releasePins(ledger: ledger)
            table.releasePins(ledger: ledger)
        }
        #expect(ledger.isEmpty)
    }

    @Test("no entry or page limit (.max), after entries already in the table")
    func unlimitedOutput() throws {
        let buffer = KUnitBuffer()
        let table = try Self.tableWithEarlierEntries(buffer)
        let earlier = Array(table)
        var iterator = IOIterator(source: UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<3 * pageSize]))
        #expect(try iterator.extract(maxSize: pageSize, into: table, maxEntries: .max) == pageSize)
        #expect(try iterator.extractThroughPages(maxSize: .max, into: table, maxPages: .max) == 2 * pageSize)
        #expect(Array(table.prefix(earlier.count)) == earlier && iterator.count == 0)
        table.releasePins()
    }

    // MARK: The kernel's 2026 bugs

    @Test("regression: a non-empty table is appended to, never overwritten (the kernel's scratch-area overlap)",
          arguments: [KUnitSource.ubuf, .kvec, .bvec])
    func noScratchOverlap(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let table = try Self.tableWithEarlierEntries(buffer, capacity: 40)
        let earlier = Array(table)
        let free = table.capacity - table.count
        let ledger = PinLedger(mode: .exact)
        try source.withIterator(buffer) { iterator, expected in
            let available = try remainingEntries(of: iterator).count
            let n = try iterator.extract(maxSize: .max, into: table, maxEntries: free, ledger: ledger)
            #expect(Array(table.prefix(earlier.count)) == earlier)
            #expect(table.count == earlier.count + min(free, available), "new entries go only into the free slots")
            #expect(entryBytes(table.dropFirst(earlier.count)) == Array(expected.prefix(n)))
            table.releasePins(ledger: ledger)
        }
        #expect(ledger.isEmpty)
    }

    @Test("regression: KVEC entries get per-page lengths, not the whole remaining length")
    func kvecPerPageLengths() throws {
        let buffer = KUnitBuffer()
        buffer.fillWithPattern()
        let kvecs = buffer.kvecs([(0x123, 0x5000), (0x7000, 0x7010)])
        try kvecs.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(kvecs: segments, direction: .source)
            let table = ScatterTable()
            let n = try iterator.extract(maxSize: .max, into: table, maxEntries: 100)
            #expect(n == 0x5000 - 0x123 + 0x10)
            #expect(table.map(\.length) == [0x1000 - 0x123, 0x1000, 0x1000, 0x1000, 0x1000, 0x10])
            #expect(table.map(\.offset) == [0x123, 0, 0, 0, 0, 0])
        }
    }

    @Test("regression: when the entries run out, the bytes reported are the bytes added", arguments: KUnitSource.allCases)
    func bytesNotOverReported(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        try source.withIterator(buffer) { iterator, expected in
            let table = ScatterTable()
            let before = iterator.count
            let n = try iterator.extract(maxSize: .max, into: table, maxEntries: 3, ledger: ledger)
            #expect(table.count == 3)
            #expect(n == table.byteCount && n < expected.count)
            #expect(iterator.count == before - n)
            #expect(entryBytes(table) == Array(expected.prefix(n)))
            table.releasePins(ledger: ledger)
        }
        #expect(ledger.isEmpty)
    }

    @Test("regression: max entries 0 adds nothing, pins nothing and does not move the iterator", arguments: KUnitSource.allCases)
    func maxEntriesZero(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        let table = try Self.tableWithEarlierEntries(buffer)
        let earlier = Array(table)
        try source.withIterator(buffer) { iterator, _ in
            let position = try remainingEntries(of: iterator)
            #expect(try iterator.extract(maxSize: .max, into: table, maxEntries: 0, ledger: ledger) == 0)
            #expect(try iterator.extractThroughPages(maxSize: .max, into: table, maxPages: 0, ledger: ledger) == 0)
            #expect(try remainingEntries(of: iterator) == position)
        }
        #expect(Array(table) == earlier && ledger.isEmpty)
    }

    @Test("XARRAY extraction skips holes and starts the next folio at its beginning")
    func xarrayHoles() throws {
        let (pool, first, second, start) = try cacheWithHole()
        defer { withExtendedLifetime(pool) {} }
        var iterator = start
        let table = ScatterTable()
        let n = try iterator.extract(maxSize: .max, into: table, maxEntries: 8)
        #expect(table.count == 2)
        #expect(table[0].address == first.address + 100 && table[0].length == first.size - 100)
        #expect(table[1].address == second.address && table[1].length == pageSize)
        #expect(n == first.size - 100 + pageSize)
    }

    @Test("XARRAY extraction one entry per call moves past the hole, never repeating a folio")
    func xarrayHolesAcrossCalls() throws {
        let (pool, first, second, start) = try cacheWithHole()
        defer { withExtendedLifetime(pool) {} }
        var iterator = start
        let table = ScatterTable()
        #expect(try iterator.extract(maxSize: .max, into: table, maxEntries: 1) == first.size - 100)
        #expect(try iterator.extract(maxSize: .max, into: table, maxEntries: 1) == pageSize)
        #expect(iterator.count == 0, "the hole's positions are consumed with the folio after it")
        #expect(try iterator.extract(maxSize: .max, into: table, maxEntries: 1) == 0)
        #expect(table.map(\.address) == [first.address + 100, second.address])
    }

    @Test("XARRAY extraction never reaches past the iterator's range, holes included")
    func xarrayRangeEndsInHole() throws {
        let pool = try PagePool(pageCount: 16)
        let cache = PageCache()
        try cache.insert(try pool.allocateFolio(order: 0), at: 0)
        try cache.insert(try pool.allocateFolio(order: 0), at: 4)
        var iterator = try IOIterator(pageCache: cache, position: 0, count: 3 * pageSize, direction: .source)
        let table = ScatterTable()
        #expect(try iterator.extract(maxSize: .max, into: table, maxEntries: 8) == pageSize)
        #expect(table.count == 1)
    }
}

/// A page cache with an order-1 folio at index 0 and an order-0 folio at index 4 (a hole
/// of two pages between them), and an XARRAY iterator from byte 100 of the first folio
/// to the end of the second. The pool must outlive the iterator.
private func cacheWithHole() throws -> (pool: PagePool, first: Folio, second: Folio, iterator: IOIterator) {
    let pool = try PagePool(pageCount: 16)
    let cache = PageCache()
    let first = try pool.allocateFolio(order: 1)
    let second = try pool.allocateFolio(order: 0)
    try cache.insert(first, at: 0)
    try cache.insert(second, at: 4)
    let iterator = try IOIterator(pageCache: cache, position: 100, count: 5 * pageSize - 100, direction: .source)
    return (pool, first, second, iterator)
}
