import IterExtract
import TestKit

/// Differential fuzzing of iterators against the reference model: any difference,
/// any change after a failed call, or any pin left behind crashes the fuzzer.
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
        switch input.byte() % 5 {
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
