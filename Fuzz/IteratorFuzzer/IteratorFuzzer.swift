import IterExtract
import RDMASGE
import ScatterList
import TestKit

/// Differential fuzzing of iterators against the reference model: every operation,
/// including extraction to pages, to a scatter table and to SGEs with random limits and
/// forced failures, is checked against the model; any difference, any change after a
/// failed call, or any pin or region reference left behind crashes the fuzzer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let fuzzed = FuzzedIterator(&input)
    fuzzed.withIterator { iterator in
        run(&iterator, model: ReferenceModel(ranges: fuzzed.ranges), input: &input)
    }
    return 0
}

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

/// The bytes the iterator describes from its position, read without moving it.
private func remainingBytes(_ iterator: IOIterator) -> [UInt8] {
    var bytes: [UInt8] = []
    iterator.walk(maxBytes: .max) { range in
        bytes += UnsafeRawBufferPointer(range.bytes)
        return range.length
    }
    return bytes
}

private func run(_ iterator: inout IOIterator, model start: ReferenceModel, input: inout FuzzInput) {
    var model = start
    // A small limit makes pinning fail part-way through some extractions.
    let ledger = PinLedger(mode: .exact, limit: input.byte() % 2 == 0 ? .max : input.byte() % 24)
    var taken: [Page] = []
    var pages: [Page] = []
    check(iterator.count == model.count, "initial count \(iterator.count) != model \(model.count)")
    var steps = 0
    while !input.isExhausted, steps < 64 {
        steps += 1
        switch input.byte() % 7 {
        case 0:
            let n = input.number(below: 70_000)
            iterator.advance(n)
            model.advance(n)
        case 1:
            // Only bytes consumed without extraction pins may be reverted freely.
            let n = input.number(below: model.position + 1)
            iterator.revert(n)
            model.revert(n)
        case 2:
            let n = input.number(below: model.count + 1)
            iterator.truncate(n)
            model.truncate(n)
        case 3:
            let saved = iterator.state
            iterator.advance(input.number(below: 70_000))
            iterator.restore(saved)
        case 5:
            extractToTable(&iterator, model: &model, input: &input, ledger: ledger)
        case 6:
            extractToSGEs(&iterator, model: &model, input: &input, ledger: ledger)
        default:
            let maxPages = input.byte() % 10
            let maxSize = input.number(below: 80_000)
            let before = (iterator.count, remainingBytes(iterator), ledger.pinnedPageCount)
            pages = [Page(frame: 1)]
            do {
                let result = try iterator.extractPages(into: &pages, maxPages: maxPages, maxSize: maxSize, ledger: ledger)
                check(pages.count == 1 + result.pageCount, "page count \(pages.count - 1) != \(result.pageCount)")
                check(result.byteCount <= min(maxSize, model.count), "described \(result.byteCount) > limit")
                var described: [UInt8] = []
                var left = result.byteCount
                var offset = result.firstPageOffset
                for page in pages.dropFirst() {
                    let part = min(left, pageSize - offset)
                    check(part > 0, "a page for zero bytes")
                    described += bytes(of: page, offset: offset, length: part)
                    left -= part
                    offset = 0
                }
                check(left == 0, "pages describe \(result.byteCount - left) of \(result.byteCount) bytes")
                check(described == model.nextBytes(result.byteCount), "extracted bytes differ from the model")
                model.advance(result.byteCount)
                if iterator.extractionWillPin { taken += pages.dropFirst() }
                // Reverting into pinned bytes is allowed; the pins stay with `taken`.
            } catch {
                check(pages == [Page(frame: 1)], "a failed extraction appended pages")
                check((iterator.count, remainingBytes(iterator), ledger.pinnedPageCount) == before,
                      "a failed extraction (\(error)) changed the iterator or the ledger")
            }
        }
        check(iterator.count == model.count, "count \(iterator.count) != model \(model.count)")
        check(remainingBytes(iterator) == model.nextBytes(.max), "remaining bytes differ from the model")
    }
    check(ledger.pinnedPageCount == taken.count, "ledger holds \(ledger.pinnedPageCount) pins, extraction took \(taken.count)")
    ledger.unpin(taken)
    check(ledger.isEmpty, "pins left behind")
}

/// The bytes `entries` describe, read through the direct view.
private func describedBytes(_ pieces: [(Page, Int, Int)]) -> [UInt8] {
    pieces.flatMap { bytes(of: $0.0, offset: $0.1, length: $0.2) }
}

/// Extraction to a scatter table that already holds an entry: the new entries describe
/// the model's next bytes, the old entry is untouched, and a failure leaves no trace.
private func extractToTable(_ iterator: inout IOIterator, model: inout ReferenceModel, input: inout FuzzInput, ledger: PinLedger) {
    let table = ScatterTable(chunkCapacity: 2 + input.byte() % 6)
    table.append(ScatterEntry(page: Page(frame: 1), offset: 0, length: 1))
    let granularity: ScatterGranularity = input.byte() % 2 == 0 ? .kernel : .merged(maxSegment: pageSize << (input.byte() % 5))
    let before = (iterator.count, remainingBytes(iterator), ledger.pinnedPageCount)
    do {
        let n = try iterator.extract(maxSize: input.number(below: 80_000), into: table, maxEntries: input.byte() % 12,
                                     granularity: granularity, ledger: ledger)
        check(table[0] == ScatterEntry(page: Page(frame: 1), offset: 0, length: 1), "an earlier entry changed")
        let pieces = table.dropFirst().map { ($0.page, $0.offset, $0.length) }
        check(pieces.allSatisfy { $0.2 > 0 }, "a zero-length entry")
        check(pieces.reduce(0) { $0 + $1.2 } == n, "entries describe a different count than returned")
        check(describedBytes(pieces) == model.nextBytes(n), "scatter entries differ from the model")
        model.advance(n)
        table.releasePins(ledger: ledger)
        check(ledger.pinnedPageCount == before.2, "the table's release did not return its pins")
    } catch {
        check(table.count == 1, "a failed extraction left entries")
        check((iterator.count, remainingBytes(iterator), ledger.pinnedPageCount) == before,
              "a failed scatter extraction (\(error)) changed the iterator or the ledger")
    }
}

/// Extraction to SGEs under a key that covers only part of the arena (so some calls
/// fail on memory no key covers): the SGEs describe the model's next bytes, each lies in
/// the key's coverage, and a failure leaves no trace.
private func extractToSGEs(_ iterator: inout IOIterator, model: inout ReferenceModel, input: inout FuzzInput, ledger: PinLedger) {
    let arena = FuzzedIterator.pool.addressRange
    let cut = UInt((1 + input.number(below: FuzzedIterator.arenaPages)) * pageSize)
    let coverage = input.byte() % 3 == 0 ? arena.lowerBound..<arena.lowerBound + cut : arena
    let keys = SingleKeyResolver(lkey: 7, coverage: coverage, access: [.localWrite])
    var sges = [SGE(address: 1, length: 1, lkey: 1)]
    let before = (iterator.count, remainingBytes(iterator), ledger.pinnedPageCount)
    do {
        let n = try iterator.extract(maxSize: input.number(below: 80_000), into: &sges, maxSGEs: input.byte() % 8, keys: keys, ledger: ledger)
        check(sges[0] == SGE(address: 1, length: 1, lkey: 1), "an earlier SGE changed")
        let added = sges.dropFirst()
        check(added.allSatisfy { $0.length > 0 && $0.lkey == 7 && coverage.contains(UInt($0.address))
                                 && UInt($0.address) + UInt($0.length) <= coverage.upperBound }, "an SGE outside its key")
        check(added.reduce(0) { $0 + Int($1.length) } == n, "SGEs describe a different count than returned")
        let described = added.flatMap { Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt($0.address)), count: Int($0.length))) }
        check(described == model.nextBytes(n), "SGEs differ from the model")
        model.advance(n)
        iterator.release(extractedSGEs: added, keys: keys, ledger: ledger)
        check(ledger.pinnedPageCount == before.2, "releasing the SGEs did not return their pins")
    } catch {
        check(sges.count == 1, "a failed extraction left SGEs")
        check((iterator.count, remainingBytes(iterator), ledger.pinnedPageCount) == before,
              "a failed SGE extraction (\(error)) changed the iterator or the ledger")
    }
}
