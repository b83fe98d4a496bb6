import IterExtract
import Testing
import TestKit

/// Random iterators of every kind checked against the reference model.
@Suite("Properties against the reference model")
struct PropertyTests {
    static let seeds: [UInt64] = Array(1...24)

    /// The bytes an iterator would yield, read without moving it.
    private func remainingBytes(_ iterator: IOIterator) -> [UInt8] {
        var copy = iterator
        var bytes = [UInt8](repeating: 0, count: copy.count)
        let n = bytes.withUnsafeMutableBytes { copy.copy(into: $0) }
        return Array(bytes[0..<n])
    }

    @Test("copying out in random chunks yields exactly the model's bytes", arguments: RandomIterator.kinds)
    func copyOut(kind: IOIteratorKind) {
        for seed in Self.seeds {
            let fixture = RandomIterator(kind: kind, seed: seed)
            var iterator = fixture.makeIterator()
            var collected: [UInt8] = []
            while iterator.count > 0 {
                var chunk = [UInt8](repeating: 0, count: fixture.next(in: 1...9000))
                let n = chunk.withUnsafeMutableBytes { iterator.copy(into: $0) }
                collected += chunk[0..<n]
                if n == 0 { break }
            }
            #expect(collected == fixture.model.nextBytes(.max), "\(fixture)")
            #expect(iterator.count == 0)
        }
    }

    @Test("advance, revert, truncate, reexpand and restore agree with the model", arguments: RandomIterator.kinds)
    func operations(kind: IOIteratorKind) {
        for seed in Self.seeds {
            let fixture = RandomIterator(kind: kind, seed: seed)
            var iterator = fixture.makeIterator()
            var model = fixture.model
            var truncation: (count: Int, position: Int)?
            for step in 0..<40 {
                switch fixture.next(in: 0...5) {
                case 0, 1:
                    let n = fixture.next(in: 0...max(0, model.count + 100))
                    iterator.advance(n)
                    model.advance(n)
                case 2:
                    let n = fixture.next(in: 0...model.position)
                    if truncation == nil {
                        iterator.revert(n)
                        model.revert(n)
                    }
                case 3:
                    if truncation == nil {
                        truncation = (model.count, model.position)
                        let n = fixture.next(in: 0...model.count)
                        iterator.truncate(n)
                        model.truncate(n)
                    }
                case 4:
                    if let saved = truncation {
                        // What was consumed since truncating is gone; the rest comes back.
                        let n = saved.count - (model.position - saved.position)
                        iterator.reexpand(n)
                        model.reexpand(n)
                        truncation = nil
                    }
                default:
                    let saved = iterator.state
                    let savedModel = model
                    iterator.advance(fixture.next(in: 0...max(0, model.count)))
                    iterator.restore(saved)
                    model = savedModel
                }
                #expect(iterator.count == model.count, "\(fixture) step \(step)")
                #expect(remainingBytes(iterator) == model.nextBytes(.max), "\(fixture) step \(step)")
            }
        }
    }

    @Test("page extraction in random chunks describes exactly the model's bytes", arguments: RandomIterator.kinds)
    func extractPages(kind: IOIteratorKind) throws {
        for seed in Self.seeds {
            let fixture = RandomIterator(kind: kind, direction: .destination, seed: seed)
            let ledger = PinLedger(mode: .exact)
            var iterator = fixture.makeIterator()
            var described: [UInt8] = []
            var all: [Page] = []
            var pages: [Page] = []
            while iterator.count > 0 {
                pages.removeAll(keepingCapacity: true)
                let before = iterator.count
                let result = try iterator.extractPages(
                    into: &pages, maxPages: fixture.next(in: 1...8), maxSize: fixture.next(in: 1...60000), ledger: ledger)
                #expect(iterator.count == before - result.byteCount)
                #expect(result.pageCount == pages.count)
                var left = result.byteCount
                var offset = result.firstPageOffset
                for page in pages {
                    let part = min(left, pageSize - offset)
                    #expect(part > 0, "no page is listed for zero bytes")
                    described += bytes(of: page, offset: offset, length: part)
                    left -= part
                    offset = 0
                }
                #expect(left == 0)
                all += pages
                if result.byteCount == 0 { break }
            }
            #expect(described == fixture.model.nextBytes(.max), "\(fixture)")
            #expect(ledger.pinnedPageCount == (iterator.extractionWillPin ? all.count : 0))
            iterator.release(extractedPages: all, ledger: ledger)
            #expect(ledger.isEmpty)
        }
    }

    @Test("page count agrees with the model's pages", arguments: RandomIterator.kinds)
    func pageCount(kind: IOIteratorKind) {
        for seed in Self.seeds {
            let fixture = RandomIterator(kind: kind, seed: seed)
            let iterator = fixture.makeIterator()
            let expected: Int
            switch kind {
            case .iovec, .kvec, .bvec:
                expected = fixture.ranges.reduce(0) { $0 + $1.pages.count }
            default:
                let first = fixture.ranges[0]
                expected = (first.pageOffset + fixture.totalCount + pageSize - 1) / pageSize
            }
            #expect(iterator.pageCount(max: .max) == expected, "\(fixture)")
            #expect(iterator.pageCount(max: 2) == min(2, expected))
        }
    }

    @Test("consume agrees with a walk followed by advance(past:holes:)", arguments: RandomIterator.kinds)
    func consumeIsWalkThenAdvance(kind: IOIteratorKind) {
        for seed in Self.seeds {
            let fixture = RandomIterator(kind: kind, seed: seed)
            var consumed = fixture.makeIterator()
            var walked = consumed
            var round = 0
            while walked.count > 0, round < 200 {
                // Each piece is cut short now and then, so walks end inside segments too.
                let maxBytes = fixture.next(in: 1...40_000)
                let cut = fixture.next(in: 0...3) == 0 ? fixture.next(in: 0...5000) : Int.max
                let holes: HolePolicy = round % 2 == 0 ? .stop : .skip
                var walkedPieces: [MemoryRange] = []
                var consumedPieces: [MemoryRange] = []
                let taken = walked.walk(maxBytes: maxBytes, holes: holes) { range in
                    walkedPieces.append(range)
                    return min(range.length, cut)
                }
                walked.advance(past: taken, holes: holes)
                let consumedBytes = consumed.consume(maxBytes: maxBytes, holes: holes) { range in
                    consumedPieces.append(range)
                    return min(range.length, cut)
                }
                #expect(consumedBytes == taken, "\(fixture)")
                #expect(consumedPieces == walkedPieces, "\(fixture)")
                #expect(consumed.count == walked.count && consumed.remainingSegmentCount == walked.remainingSegmentCount)
                #expect(remainingBytes(consumed) == remainingBytes(walked), "\(fixture)")
                if taken == 0 { break }
                round += 1
            }
        }
    }

    @Test("a consume whose body throws leaves the iterator where it was", arguments: RandomIterator.kinds)
    func consumeThatThrows(kind: IOIteratorKind) {
        struct Refused: Error {}
        for seed in Self.seeds {
            let fixture = RandomIterator(kind: kind, seed: seed)
            var iterator = fixture.makeIterator()
            let before = remainingBytes(iterator)
            var pieceCount = 0
            iterator.walk(maxBytes: .max) { range in
                pieceCount += 1
                return range.length
            }
            // The last piece throws, after the others were taken.
            var pieces = 0
            #expect(throws: Refused.self) {
                try iterator.consume(maxBytes: .max) { (range) throws(Refused) -> Int in
                    pieces += 1
                    if pieces == pieceCount { throw Refused() }
                    return range.length
                }
            }
            #expect(remainingBytes(iterator) == before)
        }
    }
}
