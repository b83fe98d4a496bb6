import Glibc
import IterExtract
import Testing

@Suite("Importing iovec arrays")
struct ImportTests {
    private func segments(_ lengths: [Int], base: UInt = 0x10000) -> [iovec] {
        var address = base
        return lengths.map { length in
            defer { address &+= UInt(max(length, 0)) }
            return iovec(iov_base: UnsafeMutableRawPointer(bitPattern: address), iov_len: length)
        }
    }

    @Test("one segment becomes UBUF, several stay IOVEC")
    func kinds() throws {
        var one = segments([100])
        #expect(try one.withUnsafeMutableBufferPointer { try IOIterator.importing($0, direction: .source) }.kind == .ubuf)
        var two = segments([100, 200])
        let iterator = try two.withUnsafeMutableBufferPointer { try IOIterator.importing($0, direction: .destination) }
        #expect(iterator.kind == .iovec && iterator.count == 300 && iterator.direction == .destination)
    }

    @Test("1024 segments are accepted, 1025 are an error that changes nothing")
    func segmentLimit() throws {
        var ok = segments(Array(repeating: 1, count: maxIOVecSegments))
        #expect(try ok.withUnsafeMutableBufferPointer { try IOIterator.importing($0, direction: .source) }.count == 1024)
        var tooMany = segments(Array(repeating: 1, count: maxIOVecSegments + 1))
        #expect(throws: IOIteratorError.tooManySegments(count: 1025, limit: 1024)) {
            try tooMany.withUnsafeMutableBufferPointer { try IOIterator.importing($0, direction: .source) }
        }
    }

    @Test("the total is clamped to MAX_RW_COUNT by shortening segments in place")
    func clamp() throws {
        var big = segments([maxReadWriteCount - 10, 100, 50])
        let iterator = try big.withUnsafeMutableBufferPointer { try IOIterator.importing($0, direction: .source) }
        #expect(iterator.count == maxReadWriteCount)
        #expect(big.map(\.iov_len) == [maxReadWriteCount - 10, 10, 0])
    }

    @Test("negative lengths and wrapping ranges are typed errors and leave the array unchanged")
    func badSegments() {
        var negative = segments([10, -1])
        #expect(throws: IOIteratorError.invalidLength(segment: 1, length: -1)) {
            try negative.withUnsafeMutableBufferPointer { try IOIterator.importing($0, direction: .source) }
        }
        var wrapping = segments([10, 0x2000], base: UInt.max - 0x1000)
        let before = wrapping.map(\.iov_len)
        #expect(throws: IOIteratorError.addressOverflow(address: UInt.max - 0x1000 + 10, length: 0x2000)) {
            try wrapping.withUnsafeMutableBufferPointer { try IOIterator.importing($0, direction: .source) }
        }
        #expect(wrapping.map(\.iov_len) == before)
    }
}
