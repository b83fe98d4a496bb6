import Glibc
import IterExtract
import Testing
import TestKit

/// Ports of the kernel's KUnit iov_iter copy cases (behaviour, written anew).
@Suite("KUnit: copy to and from the iterator")
final class KUnitCopyTests {
    let buffer = KUnitBuffer()
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: KUnit.bufferPages * pageSize, alignment: pageSize)

    init() {
        for i in 0..<scratch.count { scratch[i] = KUnit.pattern(i) }
    }

    deinit { scratch.deallocate() }

    private func expectImage(_ expected: [UInt8]) {
        let mismatches = (0..<buffer.count).filter { buffer.bytes[$0] != expected[$0] }
        #expect(mismatches.isEmpty, "first mismatch at \(mismatches.first.map { String($0, radix: 16) } ?? "-")")
    }

    @Test("copy to KVEC lays the pattern range by range")
    func copyToKVec() throws {
        buffer.zero()
        let kvecs = buffer.kvecs()
        let copied = try kvecs.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(kvecs: segments, direction: .destination)
            let size = iterator.count
            let copied = iterator.copy(from: UnsafeRawBufferPointer(rebasing: scratch[0..<size]))
            #expect(copied == size)
            #expect(iterator.count == 0)
            #expect(iterator.remainingSegmentCount == 0)
            return copied
        }
        #expect(copied == KUnit.kvecRanges.reduce(0) { $0 + $1.to - $1.from })
        expectImage(KUnitBuffer.expectedImage(ranges: KUnit.kvecRanges, size: buffer.count))
    }

    @Test("copy from KVEC gathers the ranges in order")
    func copyFromKVec() throws {
        buffer.fillWithPattern()
        let kvecs = buffer.kvecs()
        memset(scratch.baseAddress!, 0, scratch.count)
        try kvecs.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(kvecs: segments, direction: .source)
            let size = iterator.count
            #expect(iterator.copy(into: scratch) == size)
            #expect(iterator.count == 0)
            #expect(iterator.remainingSegmentCount == 0)
        }
        let expected = KUnitBuffer.expectedStream(ranges: KUnit.kvecRanges)
        #expect(Array(scratch[0..<expected.count]) == expected)
        #expect(scratch[expected.count...].allSatisfy { $0 == 0 })
    }

    @Test("copy to BVEC lays the pattern range by range")
    func copyToBVec() throws {
        buffer.zero()
        let bvecs = buffer.bvecs()
        try bvecs.withUnsafeBufferPointer { elements in
            var iterator = try IOIterator(bvecs: elements, direction: .destination)
            let size = iterator.count
            #expect(iterator.copy(from: UnsafeRawBufferPointer(rebasing: scratch[0..<size])) == size)
            #expect(iterator.count == 0)
            #expect(iterator.remainingSegmentCount == 0)
        }
        expectImage(KUnitBuffer.expectedImage(ranges: KUnitBuffer.bvecBufferRanges(), size: buffer.count))
    }

    @Test("copy from BVEC gathers the ranges in order")
    func copyFromBVec() throws {
        buffer.fillWithPattern()
        memset(scratch.baseAddress!, 0, scratch.count)
        try buffer.bvecs().withUnsafeBufferPointer { elements in
            var iterator = try IOIterator(bvecs: elements, direction: .source)
            let size = iterator.count
            #expect(iterator.copy(into: scratch) == size)
            #expect(iterator.count == 0)
            #expect(iterator.remainingSegmentCount == 0)
        }
        let expected = KUnitBuffer.expectedStream(ranges: KUnitBuffer.bvecBufferRanges())
        #expect(Array(scratch[0..<expected.count]) == expected)
        #expect(scratch[expected.count...].allSatisfy { $0 == 0 })
    }

    @Test("copy to FOLIOQ: one iterator per range, advanced to its start")
    func copyToFolioQueue() {
        buffer.zero()
        let queue = buffer.folioQueue()
        var done = 0
        for range in KUnit.kvecRanges {
            var iterator = IOIterator(folioQueue: queue, count: range.to, direction: .destination)
            iterator.advance(range.from)
            let size = range.to - range.from
            #expect(iterator.copy(from: UnsafeRawBufferPointer(rebasing: scratch[done..<done + size])) == size)
            #expect(iterator.count == 0)
            #expect(iterator.folioQueuePosition!.offset == range.to % pageSize)
            done += size
        }
        expectImage(KUnitBuffer.expectedImage(ranges: KUnit.kvecRanges, size: buffer.count))
    }

    @Test("copy from FOLIOQ: one iterator per range, advanced to its start")
    func copyFromFolioQueue() {
        buffer.fillWithPattern()
        memset(scratch.baseAddress!, 0, scratch.count)
        let queue = buffer.folioQueue()
        var done = 0
        for range in KUnit.kvecRanges {
            var iterator = IOIterator(folioQueue: queue, count: range.to, direction: .source)
            iterator.advance(range.from)
            let size = range.to - range.from
            #expect(iterator.copy(into: UnsafeMutableRawBufferPointer(rebasing: scratch[done..<done + size])) == size)
            #expect(iterator.count == 0)
            #expect(iterator.folioQueuePosition!.offset == range.to % pageSize)
            done += size
        }
        let expected = KUnitBuffer.expectedStream(ranges: KUnit.kvecRanges)
        #expect(Array(scratch[0..<expected.count]) == expected)
    }

    @Test("copy to XARRAY: one iterator per range")
    func copyToXArray() throws {
        buffer.zero()
        let cache = buffer.pageCache()
        var done = 0
        for range in KUnit.kvecRanges {
            let size = range.to - range.from
            var iterator = try IOIterator(pageCache: cache, position: range.from, count: size, direction: .destination)
            #expect(iterator.copy(from: UnsafeRawBufferPointer(rebasing: scratch[done..<done + size])) == size)
            #expect(iterator.count == 0)
            #expect(iterator.pageCachePosition == range.to)
            done += size
        }
        expectImage(KUnitBuffer.expectedImage(ranges: KUnit.kvecRanges, size: buffer.count))
    }

    @Test("copy from XARRAY: one iterator per range")
    func copyFromXArray() throws {
        buffer.fillWithPattern()
        memset(scratch.baseAddress!, 0, scratch.count)
        let cache = buffer.pageCache()
        var done = 0
        for range in KUnit.kvecRanges {
            let size = range.to - range.from
            var iterator = try IOIterator(pageCache: cache, position: range.from, count: size, direction: .source)
            #expect(iterator.copy(into: UnsafeMutableRawBufferPointer(rebasing: scratch[done..<done + size])) == size)
            #expect(iterator.count == 0)
            done += size
        }
        let expected = KUnitBuffer.expectedStream(ranges: KUnit.kvecRanges)
        #expect(Array(scratch[0..<expected.count]) == expected)
    }
}
