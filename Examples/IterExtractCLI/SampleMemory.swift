import Foundation
import IterExtract
import TestKit

/// The memory the demo describes: a pool whose pages are handed out in swapped
/// halves and mapped virtually contiguously (as the kernel's own tests arrange
/// them), or a file read into a page cache. Its ``IteratorMemory`` owns every segment
/// array, so the iterator it makes stays valid for as long as the sample lives.
final class SampleMemory {
    let pool: PagePool
    let mapping: VirtualMapping
    let kind: IOIteratorKind
    let direction: IODirection
    /// The sample as `kind` describes it (none for PIPE and DISCARD).
    private var memory: IteratorMemory?
    private(set) var byteCount = 0

    /// Sample memory of `pages` pages for `kind`.
    init(kind: IOIteratorKind, direction: IODirection, pages: Int) throws {
        self.kind = kind
        self.direction = direction
        pool = try PagePool(pageCount: pages * 2 + 64)
        let buffer = try pool.allocatePages(count: pages, arrangement: .swappedHalves)
        mapping = try VirtualMapping(pages: buffer, of: pool)
        let base = mapping.baseAddress
        let size = pages * pageSize
        for i in 0..<size { mapping.bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        switch kind {
        case .discard, .pipe:
            byteCount = size - 200
        case .ubuf:
            byteCount = size - 200
            memory = IteratorMemory(pool: pool, mapping: mapping,
                                    userBuffer: MemoryRange(address: UInt(bitPattern: base) + 100, length: byteCount))
        case .iovec, .kvec:
            // Unaligned pieces, an empty one, and two that touch.
            let cuts = [(100, size / 4), (size / 4, size / 4), (size / 4, size / 2), (size / 2 + 300, size - 5)]
            let segments = cuts.map { MemoryRange(address: UInt(bitPattern: base + $0.0), length: $0.1 - $0.0) }
            byteCount = segments.reduce(0) { $0 + $1.length }
            memory = IteratorMemory(pool: pool, mapping: mapping, segments: segments)
        case .bvec:
            let bioVecs = buffer.enumerated().map { i, page in
                let offset = i == 0 ? 100 : 0
                return BioVec(page: page, offset: offset, length: pageSize - offset - (i == pages - 1 ? 5 : 0))
            }
            byteCount = bioVecs.reduce(0) { $0 + $1.length }
            memory = IteratorMemory(pool: pool, mapping: mapping, bioVecs: bioVecs)
        case .folioq:
            byteCount = size - 100
            let queue = FolioQueue.chain(of: buffer.map { Folio(head: $0, order: 0) }, segmentCapacity: 8)
            memory = IteratorMemory(pool: pool, mapping: mapping, folioQueue: (queue, 100, byteCount))
        case .xarray:
            let cache = PageCache()
            var index = 0
            while index < pages {
                let order = min(2, (pages - index).trailingZeroBitCount)
                let folio = try pool.allocateFolio(order: order)
                try cache.insert(folio, at: index)
                index += 1 << order
            }
            byteCount = size - 105
            memory = IteratorMemory(pool: pool, mapping: mapping, pageCache: (cache, 100, byteCount))
        }
    }

    /// A page cache holding the contents of the file at `path` in folios of up to
    /// 2^`maxOrder` pages: the XARRAY source for a file.
    init(file path: String, maxOrder: Int) throws {
        let data = try fileContents(path, maxSize: IterExtractCommand.maxFileSize)
        kind = .xarray
        direction = .source
        let pages = max(1, (data.count + pageSize - 1) / pageSize)
        pool = try PagePool(pageCount: pages + (1 << Folio.maxOrder) * 2)
        mapping = try VirtualMapping(pages: [try pool.allocateFolio().head], of: pool)
        let cache = PageCache()
        var index = 0
        while index < pages {
            var order = min(maxOrder, index.trailingZeroBitCount, Int.bitWidth - 1)
            while 1 << order > pages - index, order > 0 { order -= 1 }
            let folio = try pool.allocateFolio(order: order)
            let start = index * pageSize
            let length = min(folio.size, data.count - start)
            if length > 0 {
                data.withUnsafeBytes { folio.bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[start..<start + length])) }
            }
            try cache.insert(folio, at: index)
            index += 1 << order
        }
        byteCount = data.count
        memory = IteratorMemory(pool: pool, mapping: mapping, pageCache: (cache, 0, byteCount))
    }

    /// A fresh iterator over the sample.
    func makeIterator(pipe: PagePipe?) throws -> IOIterator {
        switch kind {
        case .pipe: try IOIterator(pipe: pipe!, count: byteCount, direction: direction)
        case .discard: IOIterator(discarding: byteCount)
        default: try memory!.makeIterator(kind, direction)
        }
    }
}
