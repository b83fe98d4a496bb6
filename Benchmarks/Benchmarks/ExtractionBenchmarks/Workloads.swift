import Glibc
import IterExtract

/// The memory and segment arrays of one benchmark workload, built once outside the
/// measured region. Sizes follow the benchmark issue: IOVEC of 1, 16, 256 and 1024
/// segments of mixed sizes and alignments, BVEC of 256 pages, XARRAY over a 64 MiB
/// page cache of 2 MiB folios, and KVEC of the kernel's eight KUnit ranges.
final class Workload: @unchecked Sendable {
    let name: String
    let pool: PagePool
    private var iovecs: UnsafeMutableBufferPointer<iovec>?
    private var bvecs: UnsafeMutableBufferPointer<BioVec>?
    private var cache: PageCache?
    private var mapping: VirtualMapping?
    let kind: IOIteratorKind
    private(set) var byteCount = 0

    /// IOVEC (or KVEC) of `segments` segments with sizes from 1 byte to 24 KiB at odd alignments.
    init(iovecSegments segments: Int, kind: IOIteratorKind = .iovec) throws {
        precondition(kind == .iovec || kind == .kvec)
        self.kind = kind
        name = "\(kind.description)-\(segments)"
        pool = try PagePool(pageCount: segments * 8 + 64)
        let base = pool.baseAddress
        iovecs = .allocate(capacity: segments)
        var random = SplitMix64(seed: 0x5eed)
        var offset = 0
        for i in 0..<segments {
            let length = Int(random.next() % 24576) + 1
            offset += Int(random.next() % 512)
            iovecs![i] = iovec(iov_base: base + offset, iov_len: length)
            offset += length
            byteCount += length
        }
        precondition(offset <= pool.byteCount)
    }

    /// BVEC of `pages` whole pages, not contiguous in memory.
    init(bvecPages pages: Int) throws {
        kind = .bvec
        name = "BVEC-\(pages)"
        pool = try PagePool(pageCount: pages * 2, placement: .shuffled(seed: 7))
        bvecs = .allocate(capacity: pages)
        for i in 0..<pages {
            bvecs![i] = BioVec(page: try pool.allocateFolio().head, offset: 0, length: pageSize)
        }
        byteCount = pages * pageSize
    }

    /// XARRAY over a page cache of `megabytes` MiB in 2 MiB folios.
    init(xarrayMegabytes megabytes: Int) throws {
        kind = .xarray
        name = "XARRAY-\(megabytes)MiB"
        pool = try PagePool(pageCount: megabytes * 256)
        let cache = PageCache()
        for index in stride(from: 0, to: megabytes * 256, by: 512) {
            try cache.insert(pool.allocateFolio(order: 9), at: index)
        }
        self.cache = cache
        byteCount = megabytes << 20
    }

    /// KVEC of the kernel's KUnit ranges over a 1 MiB buffer of swapped pages.
    init(kunitKVec: Void) throws {
        kind = .kvec
        name = "KVEC-KUnit"
        pool = try PagePool(pageCount: 256)
        let pages = try pool.allocatePages(count: 256, arrangement: .swappedHalves)
        let mapping = try VirtualMapping(pages: pages, of: pool)
        let ranges = [(0x00002, 0x00002), (0x00027, 0x03000), (0x05193, 0x18794), (0x20000, 0x20000),
                      (0x20000, 0x24000), (0x24000, 0x27001), (0x29000, 0xffffb), (0xffffd, 0xffffe)]
        iovecs = .allocate(capacity: ranges.count)
        for (i, range) in ranges.enumerated() {
            iovecs![i] = iovec(iov_base: mapping.baseAddress + range.0, iov_len: range.1 - range.0)
            byteCount += range.1 - range.0
        }
        self.mapping = mapping
    }

    deinit {
        iovecs?.deallocate()
        bvecs?.deallocate()
    }

    /// The addresses the workload's memory occupies, for a single key that covers it all.
    var coverage: Range<UInt> { mapping.map { UInt(bitPattern: $0.baseAddress)..<UInt(bitPattern: $0.baseAddress) + UInt($0.bytes.count) } ?? pool.addressRange }

    /// The workload's `iovec` array (IOVEC and KVEC workloads).
    var segments: UnsafeBufferPointer<iovec> { UnsafeBufferPointer(iovecs!) }

    /// A fresh iterator over the whole workload: a copy of one made once, since making
    /// an IOVEC iterator sums its segments' lengths, which is the caller's setup and
    /// the same for every path, not extraction.
    func makeIterator() -> IOIterator { prototype }

    private lazy var prototype: IOIterator = {
        switch kind {
        case .iovec: try! IOIterator(iovecs: UnsafeBufferPointer(iovecs!), direction: .source)
        case .kvec: try! IOIterator(kvecs: UnsafeBufferPointer(iovecs!), direction: .source)
        case .bvec: try! IOIterator(bvecs: UnsafeBufferPointer(bvecs!), direction: .source)
        case .xarray: try! IOIterator(pageCache: cache!, position: 0, count: byteCount, direction: .source)
        default: preconditionFailure("no workload of kind \(kind)")
        }
    }()

    /// The workloads of the benchmark issue.
    static func all() throws -> [Workload] {
        try [1, 16, 256, 1024].map { try Workload(iovecSegments: $0) }
            + [Workload(bvecPages: 256), Workload(xarrayMegabytes: 64), Workload(kunitKVec: ())]
    }
}
