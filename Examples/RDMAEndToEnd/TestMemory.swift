#if RDMA
import Glibc
import IterExtract

/// 1 MiB of memory that every iterator kind can describe, as the kernel's iov_iter
/// KUnit tests lay it out: 256 pool pages, page `i` swapped with page `i + 128` for
/// `i < 64`, mapped virtually contiguously. UBUF, IOVEC and KVEC address the mapping;
/// BVEC, XARRAY and FOLIOQ address the pool's pages, which are the same memory. Every
/// kind describes the bytes in mapping order.
final class TestMemory {
    static let kinds: [IOIteratorKind] = [.ubuf, .iovec, .kvec, .bvec, .xarray, .folioq]
    static let pageCount = 256
    static let segmentSize = 64 << 10

    let pool: PagePool
    let pages: [Page]
    let mapping: VirtualMapping
    let segments: UnsafeMutableBufferPointer<iovec>
    let bioVecs: UnsafeMutableBufferPointer<BioVec>
    let cache: PageCache
    let queue: FolioQueue

    init() throws {
        pool = try PagePool(pageCount: Self.pageCount)
        pages = try pool.allocatePages(count: Self.pageCount, arrangement: .swappedHalves)
        mapping = try VirtualMapping(pages: pages, of: pool)
        let count = Self.pageCount * pageSize / Self.segmentSize
        segments = .allocate(capacity: count)
        for i in 0..<count {
            segments[i] = iovec(iov_base: mapping.baseAddress + i * Self.segmentSize, iov_len: Self.segmentSize)
        }
        bioVecs = .allocate(capacity: pages.count)
        for (i, page) in pages.enumerated() { bioVecs[i] = BioVec(page: page, offset: 0, length: pageSize) }
        cache = PageCache()
        for (i, page) in pages.enumerated() { try cache.insert(Folio(head: page, order: 0), at: i) }
        queue = FolioQueue.chain(of: pages.map { Folio(head: $0, order: 0) })
    }

    deinit {
        segments.deallocate()
        bioVecs.deallocate()
    }

    var bytes: UnsafeMutableRawBufferPointer { mapping.bytes }
    var count: Int { bytes.count }
    var address: UInt { UInt(bitPattern: mapping.baseAddress) }

    /// The memory is this fixture's own, so making the iterator cannot throw.
    func iterator(_ kind: IOIteratorKind, _ direction: IODirection) -> IOIterator {
        switch kind {
        case .ubuf: try! IOIterator(ubufAt: address, count: count, direction: direction)
        case .iovec: try! IOIterator(iovecs: UnsafeBufferPointer(segments), direction: direction)
        case .kvec: try! IOIterator(kvecs: UnsafeBufferPointer(segments), direction: direction)
        case .bvec: try! IOIterator(bvecs: UnsafeBufferPointer(bioVecs), direction: direction)
        case .xarray: try! IOIterator(pageCache: cache, position: 0, count: count, direction: direction)
        case .folioq: IOIterator(folioQueue: queue, count: count, direction: direction)
        default: preconditionFailure("no memory for \(kind)")
        }
    }

    /// Fills the bytes with a pattern that differs per `seed`.
    func fill(seed: UInt64) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let words = bytes.bindMemory(to: UInt64.self)
        for i in words.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            words[i] = state
        }
    }

    func zero() { memset(mapping.baseAddress, 0, count) }

    /// FNV-1a over the bytes, 8 at a time.
    var digest: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for word in bytes.bindMemory(to: UInt64.self) { hash = (hash ^ word) &* 0x100_0000_01b3 }
        return hash
    }

    func sameBytes(as other: TestMemory) -> Bool { memcmp(mapping.baseAddress, other.mapping.baseAddress, count) == 0 }
}

/// `count` page-sized buffers, each followed by an unused page,
/// so that no two are adjacent: an IOVEC of separate 4 KiB user buffers.
final class SeparateBuffers {
    let base: UnsafeMutableRawPointer
    let count: Int
    let vectors: UnsafeMutableBufferPointer<iovec>

    init(count: Int) throws {
        guard let base = mmap(nil, 2 * count * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED else { throw Failure("mmap of \(2 * count) pages failed") }
        self.base = base
        self.count = count
        vectors = .allocate(capacity: count)
        for i in 0..<count {
            vectors[i] = iovec(iov_base: base + 2 * i * pageSize, iov_len: pageSize)
            memset(base + 2 * i * pageSize, Int32(i + 1), pageSize)
        }
    }

    deinit {
        munmap(base, 2 * count * pageSize)
        vectors.deallocate()
    }

    var byteCount: Int { count * pageSize }
    var range: MemoryRange { MemoryRange(address: UInt(bitPattern: base), length: 2 * count * pageSize) }
    func iterator() -> IOIterator { try! IOIterator(iovecs: UnsafeBufferPointer(vectors), direction: .source) }
}
#endif
