import Glibc
import IterExtract
import Testing
import TestKit

@Suite("Iterator operations")
struct IteratorOperationTests {
    @Test("advance drops consumed segments, skipping empty ones, so the segment count ends at 0")
    func advanceSegments() throws {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: 300, alignment: 8)
        defer { storage.deallocate() }
        let base = storage.baseAddress!
        let segments = [iovec(iov_base: base, iov_len: 100), iovec(iov_base: base + 100, iov_len: 0),
                        iovec(iov_base: base + 100, iov_len: 200)]
        try segments.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(kvecs: segments, direction: .source)
            #expect(iterator.count == 300 && iterator.remainingSegmentCount == 3)
            iterator.advance(100)
            #expect(iterator.remainingSegmentCount == 1, "the finished and the empty segment are dropped")
            iterator.advance(150)
            #expect(iterator.remainingSegmentCount == 1 && iterator.count == 50)
            iterator.advance(1000)
            #expect(iterator.count == 0 && iterator.remainingSegmentCount == 0, "advance clamps to count")
            iterator.revert(300)
            #expect(iterator.count == 300 && iterator.remainingSegmentCount == 3)
        }
    }

    @Test("FOLIOQ walks slot by slot across segments and back")
    func folioQueueAdvanceRevert() throws {
        let pool = try PagePool(pageCount: 64)
        let folios = try (0..<5).map { _ in try pool.allocateFolio(order: 1) }
        let queue = FolioQueue.chain(of: folios, segmentCapacity: 2)
        var iterator = IOIterator(folioQueue: queue, count: 5 * 8192, direction: .source)
        iterator.advance(8192)
        #expect(iterator.folioQueuePosition!.slot == 1 && iterator.folioQueuePosition!.offset == 0)
        iterator.advance(8192 + 100)
        #expect(iterator.folioQueuePosition!.segment === queue.next)
        #expect(iterator.folioQueuePosition!.slot == 0 && iterator.folioQueuePosition!.offset == 100)
        iterator.revert(8192 + 200)
        #expect(iterator.folioQueuePosition!.segment === queue)
        #expect(iterator.folioQueuePosition!.slot == 0 && iterator.folioQueuePosition!.offset == 8092)
        #expect(iterator.count == 5 * 8192 - 8092)
    }

    @Test("save and restore return to the saved position")
    func saveRestore() {
        let bytes: [UInt8] = Array(0..<200)
        IOIterator.withSource(bytes) { iterator in
            let saved = iterator.state
            iterator.advance(150)
            iterator.restore(saved)
            var out = [UInt8](repeating: 0, count: 3)
            _ = out.withUnsafeMutableBytes { iterator.copy(into: $0) }
            #expect(out == [0, 1, 2])
        }
    }

    @Test("truncate shortens; reexpand restores what truncate hid")
    func truncateReexpand() {
        var iterator = IOIterator(discarding: 1000)
        iterator.truncate(2000)
        #expect(iterator.count == 1000)
        iterator.truncate(10)
        #expect(iterator.count == 10)
        iterator.advance(4)
        iterator.reexpand(996)
        #expect(iterator.count == 996)
    }

    @Test("page counts per kind, capped at the maximum")
    func pageCounts() throws {
        var ubuf = try IOIterator(ubufAt: 0x10_0ffe, count: 4, direction: .source)
        #expect(ubuf.pageCount(max: 10) == 2)
        #expect(ubuf.pageCount(max: 1) == 1)
        ubuf.advance(4)
        #expect(ubuf.pageCount(max: 10) == 0)
        #expect(IOIterator(discarding: 1 << 20).pageCount(max: .max) == 0)
        let cache = PageCache()
        let xarray = try IOIterator(pageCache: cache, position: 4095, count: 2, direction: .source)
        #expect(xarray.pageCount(max: 100) == 2, "XARRAY counts the span, holes or not")
    }

    @Test("alignment ORs addresses and lengths of every piece")
    func alignment() throws {
        let segments = [iovec(iov_base: UnsafeMutableRawPointer(bitPattern: 0x1000), iov_len: 0x200),
                        iovec(iov_base: UnsafeMutableRawPointer(bitPattern: 0x3000), iov_len: 0x1000)]
        try segments.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(iovecs: segments, direction: .source)
            #expect(iterator.alignment == 0x1000 | 0x200 | 0x3000 | 0x1000)
            iterator.advance(0x10)
            #expect(iterator.alignment & 0xf == 0x0, "0x1010 | 0x1f0 keeps 16-byte alignment")
            #expect(iterator.alignment & 0x1f == 0x10)
        }
        #expect(try IOIterator(ubufAt: 0x2001, count: 0x100, direction: .source).alignment == 0x2101)
    }

    @Test("zero-fill writes zeros through the iterator")
    func zeroFill() {
        var bytes = [UInt8](repeating: 0xff, count: 64)
        IOIterator.withDestination(&bytes) { iterator in
            iterator.advance(8)
            #expect(iterator.zero(16) == 16)
            #expect(iterator.count == 40)
        }
        #expect(bytes[0..<8].allSatisfy { $0 == 0xff })
        #expect(bytes[8..<24].allSatisfy { $0 == 0 })
        #expect(bytes[24...].allSatisfy { $0 == 0xff })
    }

    @Test("DISCARD takes bytes and stores nothing")
    func discard() {
        var iterator = IOIterator(discarding: 100)
        let source: [UInt8] = Array(repeating: 7, count: 150)
        #expect(source.withUnsafeBytes { iterator.copy(from: $0) } == 100)
        #expect(iterator.count == 0)
        #expect(!iterator.extractionWillPin)
    }

    @Test("XARRAY copies stop at a hole")
    func xarrayHole() throws {
        let pool = try PagePool(pageCount: 8)
        let cache = PageCache()
        try cache.insert(pool.allocateFolio(order: 0), at: 0)
        try cache.insert(pool.allocateFolio(order: 0), at: 2)
        var iterator = try IOIterator(pageCache: cache, position: 100, count: 3 * pageSize - 100, direction: .source)
        var out = [UInt8](repeating: 0, count: 3 * pageSize)
        #expect(out.withUnsafeMutableBytes { iterator.copy(into: $0) } == pageSize - 100)
    }

    @Test("span and array constructors describe the bytes they were given")
    func constructors() {
        let bytes: [UInt8] = [1, 2, 3, 4, 5]
        let copied: [UInt8] = bytes.span.bytes.withUnsafeBytes { _ in
            IOIterator.withSource(bytes.span.bytes) { iterator in
                var out = [UInt8](repeating: 0, count: 5)
                _ = out.withUnsafeMutableBytes { iterator.copy(into: $0) }
                return out
            }
        }
        #expect(copied == bytes)
        #expect(IOIterator.withSource(bytes) { $0.kind } == .ubuf)
    }
}

@Suite("Walking past holes")
struct HoleWalkTests {
    @Test("advance(past:holes: .skip) consumes the holes before the described bytes")
    func advancePastHoles() throws {
        let pool = try PagePool(pageCount: 16)
        let cache = PageCache()
        try cache.insert(try pool.allocateFolio(order: 0), at: 0)
        try cache.insert(try pool.allocateFolio(order: 0), at: 3)
        var iterator = try IOIterator(pageCache: cache, position: 0, count: 4 * pageSize, direction: .source)
        let offered = iterator.walk(maxBytes: pageSize + 10, holes: .skip) { $0.length }
        #expect(offered == pageSize + 10)
        iterator.advance(past: offered, holes: .skip)
        #expect(iterator.pageCachePosition == 3 * pageSize + 10)
        #expect(iterator.count == pageSize - 10)
        // With holes stopping the walk, advance(past:) is plain advance.
        var stopping = try IOIterator(pageCache: cache, position: 0, count: 4 * pageSize, direction: .source)
        stopping.advance(past: 100, holes: .stop)
        #expect(stopping.pageCachePosition == 100)
    }
}
