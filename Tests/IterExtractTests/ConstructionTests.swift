import Glibc
import IterExtract
import Testing

/// Making an iterator checks the caller's description of its memory: a range that
/// wraps the address space, lengths whose sum passes `Int.max`, a count the segments
/// do not hold, or a page-cache range outside `0...Int.max` is a typed error, never a
/// trap and never an iterator that later lists the wrong memory.
@Suite("Construction refuses bad ranges")
struct ConstructionTests {
    private static func iovecs(_ pieces: [(address: UInt, length: Int)]) -> [iovec] {
        pieces.map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: $0.address), iov_len: $0.length) }
    }

    private static func make(_ kind: IOIteratorKind, _ segments: UnsafeBufferPointer<iovec>,
                             count: Int? = nil) throws(IOIteratorError) -> IOIterator {
        kind == .iovec ? try IOIterator(iovecs: segments, direction: .source, count: count)
                       : try IOIterator(kvecs: segments, direction: .source, count: count)
    }

    @Test("a UBUF range that wraps past 2^64 is refused (ending exactly at 2^64 too); a negative count is an invalid length")
    func ubufWraps() {
        #expect(throws: IOIteratorError.addressOverflow(address: UInt.max - 10, length: 100)) {
            try IOIterator(ubufAt: UInt.max - 10, count: 100, direction: .source)
        }
        #expect(throws: IOIteratorError.addressOverflow(address: UInt.max - 99, length: 100)) {
            try IOIterator(ubufAt: UInt.max - 99, count: 100, direction: .destination)
        }
        #expect(throws: IOIteratorError.invalidLength(segment: 0, length: -1)) {
            try IOIterator(ubufAt: 0x1000, count: -1, direction: .source)
        }
        #expect(throws: Never.self) { try IOIterator(ubufAt: UInt.max - 100, count: 100, direction: .source) }
    }

    @Test("an IOVEC or KVEC segment that wraps is refused, wherever it is", arguments: [IOIteratorKind.iovec, .kvec])
    func segmentWraps(kind: IOIteratorKind) {
        let segments = Self.iovecs([(0x10000, 5000), (0x40000, 70), (UInt.max - 10, 100), (0x50000, 10)])
        segments.withUnsafeBufferPointer { segments in
            _ = #expect(throws: IOIteratorError.addressOverflow(address: UInt.max - 10, length: 100)) {
                try Self.make(kind, segments)
            }
        }
    }

    @Test("IOVEC or KVEC lengths that add up past Int.max are refused", arguments: [IOIteratorKind.iovec, .kvec])
    func lengthsOverflow(kind: IOIteratorKind) {
        let segments = Self.iovecs([(0x1000, 10), (0x1000, Int.max - 0x2000), (0x1000, 0x3000)])
        segments.withUnsafeBufferPointer { segments in
            _ = #expect(throws: IOIteratorError.lengthOverflow(segment: 2)) { try Self.make(kind, segments) }
            // Even with a count that the first segments hold.
            _ = #expect(throws: IOIteratorError.lengthOverflow(segment: 2)) { try Self.make(kind, segments, count: 5) }
        }
    }

    @Test("a negative IOVEC or KVEC length, or a count beyond the segments, is refused", arguments: [IOIteratorKind.iovec, .kvec])
    func invalidLengthAndCount(kind: IOIteratorKind) {
        let negative = Self.iovecs([(0x1000, 10), (0x2000, -5)])
        negative.withUnsafeBufferPointer { segments in
            _ = #expect(throws: IOIteratorError.invalidLength(segment: 1, length: -5)) { try Self.make(kind, segments) }
        }
        let segments = Self.iovecs([(0x1000, 10), (0x2000, 20)])
        segments.withUnsafeBufferPointer { segments in
            _ = #expect(throws: IOIteratorError.countExceedsSegments(count: 31, total: 30)) {
                try Self.make(kind, segments, count: 31)
            }
            #expect((try? Self.make(kind, segments, count: 30))?.count == 30)
            #expect((try? Self.make(kind, segments, count: 7))?.count == 7)
        }
    }

    @Test("BVEC elements that wrap, add up past Int.max, or fall short of the count are refused")
    func bioVecs() {
        let wrapping = [BioVec(page: Page(frame: 1), offset: 0, length: 10),
                        BioVec(page: Page(frame: UInt.max >> UInt(pageShift)), offset: 0xff0, length: 0x20)]
        wrapping.withUnsafeBufferPointer { elements in
            _ = #expect(throws: IOIteratorError.addressOverflow(address: UInt.max - 15, length: 0x20)) {
                try IOIterator(bvecs: elements, direction: .source)
            }
        }
        let long = [BioVec(page: Page(frame: 1), offset: 0, length: Int.max - 0x2000),
                    BioVec(page: Page(frame: 1), offset: 0, length: 0x3000)]
        long.withUnsafeBufferPointer { elements in
            _ = #expect(throws: IOIteratorError.lengthOverflow(segment: 1)) { try IOIterator(bvecs: elements, direction: .source) }
        }
        var negative = [BioVec(page: Page(frame: 1), offset: 0, length: 10)]
        negative[0].length = -1
        negative.withUnsafeBufferPointer { elements in
            _ = #expect(throws: IOIteratorError.invalidLength(segment: 0, length: -1)) {
                try IOIterator(bvecs: elements, direction: .source)
            }
        }
        let short = [BioVec(page: Page(frame: 1), offset: 0, length: 10)]
        short.withUnsafeBufferPointer { elements in
            _ = #expect(throws: IOIteratorError.countExceedsSegments(count: 11, total: 10)) {
                try IOIterator(bvecs: elements, direction: .source, count: 11)
            }
        }
    }

    @Test("a buffer pointer that wraps around the address space is a programmer error and traps")
    func wrappingBufferPointerTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = IOIterator(source: UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt.max - 10), count: 100))
        }
    }

    @Test("an XARRAY range that starts below 0 or ends past Int.max is refused; one ending at Int.max works")
    func pageCacheRange() throws {
        let cache = PageCache()
        #expect(throws: IOIteratorError.invalidPosition(position: Int.max - 10, count: 100)) {
            try IOIterator(pageCache: cache, position: Int.max - 10, count: 100, direction: .source)
        }
        #expect(throws: IOIteratorError.invalidPosition(position: -1, count: 10)) {
            try IOIterator(pageCache: cache, position: -1, count: 10, direction: .source)
        }
        var high = try IOIterator(pageCache: cache, position: Int.max - 100, count: 100, direction: .destination)
        var pages: [Page] = []
        #expect(try high.extractPages(into: &pages, maxPages: 4, maxSize: .max) == .empty, "nothing cached there")
        #expect(high.zero(50) == 0 && high.pageCount(max: 8) == 1)
    }
}
