import IterExtract
import Testing
import TestKit

/// A FOLIOQ chain may hold empty segments anywhere (``FolioQueue/appendSegment()``
/// makes one); an iterator moves over any number of them without losing its place.
@Suite("FOLIOQ chains with empty segments")
struct FolioQueueEmptySegmentTests {
    /// Chain layouts: the number of folios in each segment, 0 for an empty one.
    static let layouts: [[Int]] = [
        [0, 2, 1],                       // empty at the start
        [2, 0, 2],                       // one in the middle
        [1, 0, 0, 0, 2],                 // several in a row
        [2, 1, 0, 0],                    // at the end
        [0, 0, 1, 0, 1, 0, 0, 3, 0, 0],  // everywhere
    ]

    /// A chain shaped by `layout` over fresh folios of mixed orders, each filled with
    /// the KUnit pattern of its bytes' position in the chain, and the folios in order.
    static func chain(_ layout: [Int], pool: PagePool) throws -> (FolioQueue, [MemoryRange]) {
        let head = FolioQueue(capacity: 4)
        var tail = head
        var ranges: [MemoryRange] = []
        var position = 0
        for (index, folios) in layout.enumerated() {
            if index > 0 { tail = tail.appendSegment() }
            for _ in 0..<folios {
                let folio = try pool.allocateFolio(order: ranges.count % 3)
                for i in 0..<folio.size { folio.bytes[i] = KUnit.pattern(position + i) }
                position += folio.size
                try tail.append(folio)
                ranges.append(MemoryRange(address: folio.address, length: folio.size))
            }
        }
        return (head, ranges)
    }

    /// The byte ranges a page extraction described.
    static func ranges(of pages: ArraySlice<Page>, _ extraction: PageExtraction) -> [MemoryRange] {
        var left = extraction.byteCount
        var offset = extraction.firstPageOffset
        return pages.map { page in
            let length = min(left, pageSize - offset)
            defer { left -= length; offset = 0 }
            return MemoryRange(address: page.address + UInt(offset), length: length)
        }
    }

    @Test("advancing and extracting in turns follows the flattened chain", arguments: layouts)
    func advanceThenExtract(layout: [Int]) throws {
        let pool = try PagePool(pageCount: 256)
        let (queue, ranges) = try Self.chain(layout, pool: pool)
        let total = ranges.reduce(0) { $0 + $1.length }
        for (step, maxSize) in [(1, 100), (100, 5000), (pageSize, pageSize), (pageSize + 1, 3 * pageSize), (9000, 2 * pageSize + 3)] {
            var iterator = IOIterator(folioQueue: queue, count: total, direction: .source)
            var model = ReferenceModel(ranges: ranges)
            var pages: [Page] = []
            while iterator.count > 0 {
                iterator.advance(step)
                model.advance(step)
                #expect(iterator.count == model.count)
                let start = pages.count
                let extraction = try iterator.extractPages(into: &pages, maxPages: 3, maxSize: maxSize)
                #expect(coalesced(Self.ranges(of: pages[start...], extraction)) == model.nextRanges(extraction.byteCount),
                        "layout \(layout), step \(step), at \(model.position)")
                model.advance(extraction.byteCount)
                #expect(iterator.count == model.count)
                var probe = [UInt8](repeating: 0, count: 300)
                var copy = iterator
                let copied = probe.withUnsafeMutableBytes { copy.copy(into: $0) }
                #expect(Array(probe[..<copied]) == model.nextBytes(300))
            }
            #expect(model.count == 0)
            // Back over every segment, empty ones included, to the start.
            iterator.revert(total)
            #expect(iterator.count == total)
            let extraction = try iterator.extractPages(into: &pages, maxPages: 2, maxSize: .max)
            #expect(coalesced(Self.ranges(of: pages.suffix(extraction.pageCount), extraction))
                    == ReferenceModel(ranges: ranges).nextRanges(extraction.byteCount))
        }
    }

    @Test("a start offset runs past empty segments and past its folio into the next ones", arguments: layouts)
    func startOffset(layout: [Int]) throws {
        let pool = try PagePool(pageCount: 256)
        let (queue, ranges) = try Self.chain(layout, pool: pool)
        let total = ranges.reduce(0) { $0 + $1.length }
        for offset in [0, 100, ranges[0].length, ranges[0].length + 5] {
            var iterator = IOIterator(folioQueue: queue, offset: offset, count: total - offset, direction: .source)
            var model = ReferenceModel(ranges: ranges)
            model.advance(offset)
            var pages: [Page] = []
            let extraction = try iterator.extractPages(into: &pages, maxPages: 4, maxSize: .max)
            #expect(coalesced(Self.ranges(of: pages[...], extraction)) == model.nextRanges(extraction.byteCount),
                    "layout \(layout), offset \(offset)")
        }
    }
}
