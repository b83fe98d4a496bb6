import Glibc
import IterExtract

/// The kernel's KUnit "iov_iter" fixtures (lib/tests/kunit_iov_iter.c), rebuilt:
/// the pattern function, a 256-page buffer whose pages are swapped in halves, and
/// the KVEC and BVEC range tables.
public enum KUnit {
    /// The byte the tests expect at offset `x` of the buffer.
    public static func pattern(_ x: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (x & 0xff) + ((x >> 8) & 0xff) + ((x >> 16) & 0xff))
    }

    /// KVEC ranges (from, to) within the buffer.
    public static let kvecRanges: [(from: Int, to: Int)] = [
        (0x00002, 0x00002), (0x00027, 0x03000), (0x05193, 0x18794), (0x20000, 0x20000),
        (0x20000, 0x24000), (0x24000, 0x27001), (0x29000, 0xffffb), (0xffffd, 0xffffe),
    ]

    /// BVEC ranges (page, from, to).
    public static let bvecRanges: [(page: Int, from: Int, to: Int)] = [
        (0, 0x0002, 0x0002), (1, 0x0027, 0x0893), (2, 0x0193, 0x0794), (3, 0x0000, 0x1000),
        (4, 0x0000, 0x1000), (5, 0x0000, 0x1000), (6, 0x0000, 0x0ffb), (6, 0x0ffd, 0x0ffe),
    ]

    /// The number of pages in the test buffer (1 MiB).
    public static let bufferPages = 256
}

/// A 1 MiB buffer laid out as the KUnit tests lay it out: 256 single pages from a
/// pool, page `i` swapped with page `i + 128` for `i < 64`, mapped virtually
/// contiguously (the kernel's `vmap`). Page `i` of ``pages`` backs bytes
/// `i*4096..<(i+1)*4096` of ``bytes``.
public final class KUnitBuffer: @unchecked Sendable {
    public let pool: PagePool
    public let pages: [Page]
    public let mapping: VirtualMapping

    /// A buffer of `pageCount` pages from a pool of its own.
    ///
    /// - Throws: ``MemoryError`` when the pool or the mapping cannot be made.
    public init(pages pageCount: Int) throws(MemoryError) {
        pool = try PagePool(pageCount: pageCount)
        pages = try pool.allocatePages(count: pageCount, arrangement: .swappedHalves)
        mapping = try VirtualMapping(pages: pages, of: pool)
    }

    /// The KUnit tests' 1 MiB buffer. The pool is the fixture's own, so making it cannot fail.
    public convenience init() { try! self.init(pages: KUnit.bufferPages) }

    /// The buffer's bytes (the virtually contiguous view).
    public var bytes: UnsafeMutableRawBufferPointer { mapping.bytes }

    /// The buffer's size.
    public var count: Int { pages.count * pageSize }

    /// Fills the buffer with ``KUnit/pattern(_:)``.
    public func fillWithPattern() {
        for i in 0..<count { bytes[i] = KUnit.pattern(i) }
    }

    /// Fills the buffer with zeros.
    public func zero() { memset(bytes.baseAddress!, 0, count) }

    /// KVEC segments over ``KUnit/kvecRanges`` (or any ranges) of the buffer.
    public func kvecs(_ ranges: [(from: Int, to: Int)] = KUnit.kvecRanges) -> [iovec] {
        ranges.map { iovec(iov_base: bytes.baseAddress! + $0.from, iov_len: $0.to - $0.from) }
    }

    /// BVEC elements over ``KUnit/bvecRanges``, with the kernel test's merging: a range
    /// that starts at 0 joins the previous element when that one ended page-aligned
    /// on the frame just before.
    public func bvecs(_ ranges: [(page: Int, from: Int, to: Int)] = KUnit.bvecRanges) -> [BioVec] {
        var result: [BioVec] = []
        var canMerge: Page?
        for range in ranges {
            let page = pages[range.page]
            if range.from == 0, range.to != range.from, page == canMerge {
                result[result.count - 1].length += range.to
            } else {
                result.append(BioVec(page: page, offset: range.from, length: range.to - range.from))
            }
            if range.to & (pageSize - 1) == 0 { canMerge = page.advanced(by: 1) }
        }
        return result
    }

    /// The buffer offsets the BVEC ranges cover, as (from, to) within the buffer.
    public static func bvecBufferRanges(_ ranges: [(page: Int, from: Int, to: Int)] = KUnit.bvecRanges) -> [(from: Int, to: Int)] {
        ranges.map { ($0.page * pageSize + $0.from, $0.page * pageSize + $0.to) }
    }

    /// A folio-queue chain with one order-0 folio per page of the buffer, in order.
    public func folioQueue(segmentCapacity: Int = FolioQueue.defaultCapacity) -> FolioQueue {
        FolioQueue.chain(of: pages.map { Folio(head: $0, order: 0) }, segmentCapacity: segmentCapacity)
    }

    /// A page cache with page `i` of the buffer at index `i`.
    public func pageCache() -> PageCache { try! makePageCache() }

    /// A page cache with page `i` of the buffer at index `i`.
    ///
    /// - Throws: what ``PageCache/insert(_:at:)`` throws.
    public func makePageCache() throws(MemoryError) -> PageCache {
        let cache = PageCache()
        for (i, page) in pages.enumerated() { try cache.insert(Folio(head: page, order: 0), at: i) }
        return cache
    }

    /// The buffer image expected after the pattern is copied range by range into a
    /// zeroed buffer: pattern bytes inside the ranges (numbered by the running
    /// count of bytes copied), zero elsewhere.
    public static func expectedImage(ranges: [(from: Int, to: Int)], size: Int) -> [UInt8] {
        var image = [UInt8](repeating: 0, count: size)
        var n = 0
        for range in ranges {
            for i in range.from..<range.to {
                image[i] = KUnit.pattern(n)
                n += 1
            }
        }
        return image
    }

    /// The bytes expected after copying the ranges out of a pattern-filled buffer, in order.
    public static func expectedStream(ranges: [(from: Int, to: Int)]) -> [UInt8] {
        ranges.flatMap { range in (range.from..<range.to).map(KUnit.pattern) }
    }
}
