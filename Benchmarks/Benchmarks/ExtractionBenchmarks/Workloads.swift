import Glibc
import IterExtract
import BenchmarkTestKit

/// The memory of one benchmark workload, described once outside the measured region by
/// TestKit's `IteratorMemory` (linked in as `BenchmarkTestKit`). Sizes follow the
/// benchmark issue: IOVEC of 1, 16, 256 and 1024 segments of mixed sizes and alignments,
/// BVEC of 256 pages, XARRAY over a 64 MiB page cache of 2 MiB folios, and KVEC of the
/// kernel's eight KUnit ranges.
final class Workload: @unchecked Sendable {
    let name: String
    let kind: IOIteratorKind
    let memory: IteratorMemory
    let byteCount: Int
    /// What keeps the KUnit buffer's mapping alive (KVEC-KUnit).
    private let buffer: KUnitBuffer?

    private init(name: String, kind: IOIteratorKind, memory: IteratorMemory, byteCount: Int, buffer: KUnitBuffer? = nil) {
        self.name = name
        self.kind = kind
        self.memory = memory
        self.byteCount = byteCount
        self.buffer = buffer
    }

    /// IOVEC (or KVEC) of `segments` segments with sizes from 1 byte to 24 KiB at odd alignments.
    convenience init(iovecSegments segments: Int, kind: IOIteratorKind = .iovec) throws {
        precondition(kind == .iovec || kind == .kvec)
        let pool = try PagePool(pageCount: segments * 8 + 64)
        let base = UInt(bitPattern: pool.baseAddress)
        var random = SplitMix64(seed: 0x5eed)
        var offset = 0
        let ranges = (0..<segments).map { _ in
            let length = Int(random.next() % 24576) + 1
            offset += Int(random.next() % 512)
            defer { offset += length }
            return MemoryRange(address: base + UInt(offset), length: length)
        }
        precondition(offset <= pool.byteCount)
        self.init(name: "\(kind.description)-\(segments)", kind: kind, memory: IteratorMemory(pool: pool, segments: ranges),
                  byteCount: ranges.reduce(0) { $0 + $1.length })
    }

    /// BVEC of `pages` whole pages, not contiguous in memory.
    convenience init(bvecPages pages: Int) throws {
        let pool = try PagePool(pageCount: pages * 2, placement: .shuffled(seed: 7))
        let bioVecs = try (0..<pages).map { _ in BioVec(page: try pool.allocateFolio().head, offset: 0, length: pageSize) }
        self.init(name: "BVEC-\(pages)", kind: .bvec, memory: IteratorMemory(pool: pool, bioVecs: bioVecs),
                  byteCount: pages * pageSize)
    }

    /// XARRAY over a page cache of `megabytes` MiB in 2 MiB folios.
    convenience init(xarrayMegabytes megabytes: Int) throws {
        let pool = try PagePool(pageCount: megabytes * 256)
        let cache = PageCache()
        for index in stride(from: 0, to: megabytes * 256, by: 512) {
            try cache.insert(pool.allocateFolio(order: 9), at: index)
        }
        self.init(name: "XARRAY-\(megabytes)MiB", kind: .xarray,
                  memory: IteratorMemory(pool: pool, pageCache: (cache, 0, megabytes << 20)), byteCount: megabytes << 20)
    }

    /// KVEC of the kernel's KUnit ranges over a 1 MiB buffer of swapped pages.
    convenience init(kunitKVec: Void) throws {
        let buffer = try KUnitBuffer(pages: KUnit.bufferPages)
        let base = UInt(bitPattern: buffer.bytes.baseAddress)
        let ranges = KUnit.kvecRanges.map { MemoryRange(address: base + UInt($0.from), length: $0.to - $0.from) }
        self.init(name: "KVEC-KUnit", kind: .kvec, memory: IteratorMemory(pool: buffer.pool, mapping: buffer.mapping, segments: ranges),
                  byteCount: ranges.reduce(0) { $0 + $1.length }, buffer: buffer)
    }

    /// The addresses the workload's memory occupies, for a single key that covers it all.
    var coverage: Range<UInt> {
        memory.mapping.map { UInt(bitPattern: $0.baseAddress)..<UInt(bitPattern: $0.baseAddress) + UInt($0.bytes.count) }
            ?? memory.pool.addressRange
    }

    /// The workload's `iovec` array (IOVEC and KVEC workloads).
    var segments: UnsafeBufferPointer<iovec> { memory.segments! }

    /// A fresh iterator over the whole workload: a copy of one made once, since making
    /// an IOVEC iterator sums its segments' lengths, which is the caller's setup and
    /// the same for every path, not extraction.
    func makeIterator() -> IOIterator { prototype }

    private lazy var prototype: IOIterator = memory.iterator(kind, .source)

    /// The workloads of the benchmark issue.
    static func all() throws -> [Workload] {
        try [1, 16, 256, 1024].map { try Workload(iovecSegments: $0) }
            + [Workload(bvecPages: 256), Workload(xarrayMegabytes: 64), Workload(kunitKVec: ())]
    }
}
