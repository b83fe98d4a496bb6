import Glibc
import IterExtract

/// A ``KUnitBuffer`` (1 MiB, pages swapped in halves, mapped virtually contiguously)
/// described whole by every memory kind, in buffer order: UBUF over the mapping, IOVEC
/// and KVEC as 64 KiB segments of it, BVEC a whole page per element, XARRAY a page
/// cache and FOLIOQ a folio queue of the pages. UBUF, IOVEC and KVEC address the
/// mapping; BVEC, XARRAY and FOLIOQ the pool's pages, which are the same memory.
public final class WholeBuffer: @unchecked Sendable {
    /// The kinds that describe memory.
    public static let kinds = IteratorMemory.kinds
    /// The IOVEC and KVEC segments' size.
    public static let segmentSize = 64 << 10

    /// The buffer.
    public let buffer: KUnitBuffer
    /// Its descriptions.
    public let memory: IteratorMemory

    /// A buffer of `pages` pages described by every kind.
    ///
    /// - Throws: ``MemoryError`` when the pool or the mapping cannot be made.
    public init(pages: Int) throws {
        buffer = try KUnitBuffer(pages: pages)
        let start = UInt(bitPattern: buffer.bytes.baseAddress)
        let count = buffer.count
        memory = IteratorMemory(
            pool: buffer.pool, mapping: buffer.mapping,
            userBuffer: MemoryRange(address: start, length: count),
            segments: stride(from: 0, to: count, by: Self.segmentSize).map {
                MemoryRange(address: start + UInt($0), length: min(Self.segmentSize, count - $0))
            },
            bioVecs: buffer.pages.map { BioVec(page: $0, offset: 0, length: pageSize) },
            pageCache: (try buffer.makePageCache(), 0, count),
            folioQueue: (buffer.folioQueue(), 0, count))
    }

    /// The KUnit tests' 1 MiB buffer described by every kind. The pool is the fixture's
    /// own, so making it cannot fail.
    public convenience init() { try! self.init(pages: KUnit.bufferPages) }

    /// The buffer's size.
    public var count: Int { buffer.count }
    /// The virtually contiguous view's bytes.
    public var bytes: UnsafeMutableRawBufferPointer { buffer.bytes }
    /// The virtually contiguous view.
    public var mapping: VirtualMapping { buffer.mapping }
    /// The virtually contiguous view's first address.
    public var address: UInt { UInt(bitPattern: buffer.bytes.baseAddress) }
    /// The virtually contiguous view (UBUF, IOVEC, KVEC memory).
    public var mappingRange: Range<UInt> { address..<address + UInt(count) }
    /// The pool's direct view (BVEC, XARRAY, FOLIOQ memory).
    public var poolRange: Range<UInt> { buffer.pool.addressRange }
    /// The IOVEC and KVEC segments.
    public var segments: UnsafeBufferPointer<iovec> { memory.segments! }

    /// A fresh iterator of `kind` over the whole buffer.
    public func iterator(_ kind: IOIteratorKind, _ direction: IODirection) -> IOIterator {
        memory.iterator(kind, direction)
    }

    /// Fills the bytes with a pattern that differs per `seed` (xorshift, 8 bytes at a time).
    public func fill(seed: UInt64) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let words = bytes.bindMemory(to: UInt64.self)
        for i in words.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            words[i] = state
        }
    }

    /// Fills the bytes with zeros.
    public func zero() { buffer.zero() }

    /// FNV-1a over the bytes, 8 at a time.
    public var digest: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for word in bytes.bindMemory(to: UInt64.self) { hash = (hash ^ word) &* 0x100_0000_01b3 }
        return hash
    }

    /// Whether `other` holds the same bytes.
    public func sameBytes(as other: WholeBuffer) -> Bool { memcmp(mapping.baseAddress, other.mapping.baseAddress, count) == 0 }
}
