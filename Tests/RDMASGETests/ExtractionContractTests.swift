import Glibc
import IterExtract
import RDMASGE
import ScatterList
import TestKit
import Testing

/// The three extractors, called the same way: `capacity` is max pages, max entries or
/// max SGEs.
enum ContractExtractor: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case pages, scatterTable, sges

    var testDescription: String { rawValue }

    /// What one call gave: the bytes described, or the iterator-level error the
    /// extractor threw (unwrapped from `.iterator(_)`), or an error of another kind.
    enum Outcome: Equatable, CustomStringConvertible {
        case bytes(Int)
        case iterator(IOIteratorError)
        case other(String)

        var description: String {
            switch self {
            case .bytes(let n): "\(n) bytes"
            case .iterator(let error): "IOIteratorError.\(error)"
            case .other(let error): "another error: \(error)"
            }
        }
    }

    /// Runs one extraction; returns its outcome and the number of outputs appended
    /// after the sentinel the output starts with. Whatever a successful call took is
    /// released again.
    func run(_ iterator: inout IOIterator, maxSize: Int, capacity: Int, ledger: PinLedger) -> (Outcome, appended: Int) {
        switch self {
        case .pages:
            var pages = [Page(frame: 0xdead)]
            do {
                let result = try iterator.extractPages(into: &pages, maxPages: capacity, maxSize: maxSize, ledger: ledger)
                iterator.release(extractedPages: pages.dropFirst(), ledger: ledger)
                #expect(result.pageCount == pages.count - 1)
                return (.bytes(result.byteCount), pages.count - 1)
            } catch {
                #expect(pages == [Page(frame: 0xdead)])
                return (.iterator(error), pages.count - 1)
            }
        case .scatterTable:
            let table = ScatterTable()
            table.append(ScatterEntry(page: Page(frame: 0xdead), offset: 0, length: 1))
            do {
                let bytes = try iterator.extract(maxSize: maxSize, into: table, maxEntries: capacity, ledger: ledger)
                let appended = table.count - 1
                table.releasePins(ledger: ledger)
                return (.bytes(bytes), appended)
            } catch .iterator(let error) {
                return (.iterator(error), table.count - 1)
            } catch {
                return (.other("\(error)"), table.count - 1)
            }
        case .sges:
            let sentinel = sge(0xdead, 1, 0xbeef)
            var sges = [sentinel]
            let keys = SingleKeyResolver(lkey: 1, coverage: 0..<UInt.max, access: .all)
            do {
                let bytes = try iterator.extract(maxSize: maxSize, into: &sges, maxSGEs: capacity, keys: keys, ledger: ledger)
                iterator.release(extractedSGEs: sges.dropFirst(), keys: keys, ledger: ledger)
                return (.bytes(bytes), sges.count - 1)
            } catch .iterator(let error) {
                #expect(sges == [sentinel])
                return (.iterator(error), sges.count - 1)
            } catch {
                return (.other("\(error)"), sges.count - 1)
            }
        }
    }
}

/// One case of the extraction contract: an iterator, the call's limits, and the one
/// answer every extractor must give.
enum ContractCase: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case zeroCapacity, zeroCapacityUser, zeroMaxSize, zeroMaxSizeUser
    case discard, discardZeroMaxSize, discardZeroCapacity, emptyDiscard
    case pipeSource
    case maxReadWriteCountClamp
    case pinLimit

    var testDescription: String { rawValue }

    /// Far more than any case describes.
    static let roomy = 1 << 20

    var maxSize: Int {
        switch self {
        case .zeroMaxSize, .zeroMaxSizeUser, .discardZeroMaxSize: 0
        case .pinLimit: 8 * pageSize
        default: .max
        }
    }

    var capacity: Int {
        switch self {
        case .zeroCapacity, .zeroCapacityUser, .discardZeroCapacity: 0
        default: ContractCase.roomy
        }
    }

    var ledgerLimit: Int { self == .pinLimit ? 5 : .max }

    var expected: ContractExtractor.Outcome {
        switch self {
        case .zeroCapacity, .zeroCapacityUser, .zeroMaxSize, .zeroMaxSizeUser: .bytes(0)
        case .discard, .discardZeroMaxSize, .discardZeroCapacity, .emptyDiscard: .iterator(.notExtractable(.discard))
        case .pipeSource: .iterator(.pipeIsDestinationOnly)
        case .maxReadWriteCountClamp: .bytes(maxReadWriteCount)
        case .pinLimit: .iterator(.pinLimitExceeded(requested: 8, available: 5))
        }
    }

    /// The iterator of the case, over memory that `fixture` keeps alive.
    func iterator(_ fixture: ContractFixture) -> IOIterator {
        switch self {
        case .zeroCapacity, .zeroMaxSize: fixture.whole.iterator(.kvec, .source)
        case .zeroCapacityUser, .zeroMaxSizeUser, .pinLimit: fixture.whole.iterator(.ubuf, .source)
        case .discard, .discardZeroMaxSize, .discardZeroCapacity: IOIterator(discarding: 100)
        case .emptyDiscard: IOIterator(discarding: 0)
        case .pipeSource:
            IOIterator.pipeSourceForTesting(fixture.pipe, count: 100)
        case .maxReadWriteCountClamp: try! IOIterator(bvecs: UnsafeBufferPointer(fixture.hugeBioVec), direction: .source)
        }
    }
}

/// Memory for the contract's iterators.
final class ContractFixture: @unchecked Sendable {
    let whole = WholeBuffer()
    let pipe = PagePipe(pool: try! PagePool(pageCount: 4), capacity: 4)
    /// One BVEC element of 3 GiB, past ``maxReadWriteCount``. Its pages are never
    /// touched: every extractor only describes them.
    let hugeBioVec: UnsafeMutableBufferPointer<BioVec>

    init() {
        hugeBioVec = .allocate(capacity: 1)
        hugeBioVec[0] = BioVec(page: Page(frame: 0x10_0000), offset: 0, length: 3 << 30)
    }

    deinit { hugeBioVec.deallocate() }
}

/// The iterator's state as far as a caller can see it.
private func observable(_ iterator: IOIterator) -> [Int] {
    var state = [iterator.count, iterator.remainingSegmentCount]
    if iterator.kind != .discard, iterator.kind != .pipe, iterator.count < maxReadWriteCount {
        for range in remainingRanges(iterator) { state += [Int(bitPattern: range.address), range.length] }
    }
    return state
}

@Suite("The extraction contract: one answer from pages, scatter tables and SGEs")
struct ExtractionContractTests {
    @Test("every extractor gives the same answer, and an error leaves no trace",
          arguments: ContractCase.allCases, ContractExtractor.allCases)
    func sameAnswer(_ contractCase: ContractCase, _ extractor: ContractExtractor) {
        let fixture = ContractFixture()
        let ledger = PinLedger(mode: .exact, limit: contractCase.ledgerLimit)
        var iterator = contractCase.iterator(fixture)
        let before = observable(iterator)
        let count = iterator.count
        let occupancy = fixture.pipe.occupancy
        let (outcome, appended) = extractor.run(
            &iterator, maxSize: contractCase.maxSize, capacity: contractCase.capacity, ledger: ledger)
        #expect(outcome == contractCase.expected)
        #expect(ledger.isEmpty)
        #expect(fixture.pipe.occupancy == occupancy)
        switch outcome {
        case .bytes(let bytes):
            #expect(iterator.count == count - bytes)
            #expect((appended > 0) == (bytes > 0))
        case .iterator, .other:
            #expect(appended == 0)
            #expect(observable(iterator) == before)
        }
    }
}
