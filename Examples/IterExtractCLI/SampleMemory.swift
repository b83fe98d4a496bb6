import Foundation
import IterExtract

/// The memory the demo describes: a pool whose pages are handed out in swapped
/// halves and mapped virtually contiguously (as the kernel's own tests arrange
/// them), or a file read into a page cache. It owns every segment array, so the
/// iterator it makes stays valid for as long as the sample lives.
final class SampleMemory {
    let pool: PagePool
    let mapping: VirtualMapping
    let kind: IOIteratorKind
    let direction: IODirection
    private var segments: UnsafeMutableBufferPointer<iovec>?
    private var bioVecs: UnsafeMutableBufferPointer<BioVec>?
    private var cache: PageCache?
    private var queue: FolioQueue?
    private(set) var byteCount = 0
    /// Where the XARRAY iterator starts in the page cache.
    private var startOffset = 0

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
        case .ubuf, .discard, .pipe:
            byteCount = size - 200
        case .iovec, .kvec:
            // Unaligned pieces, an empty one, and two that touch.
            let cuts = [(100, size / 4), (size / 4, size / 4), (size / 4, size / 2), (size / 2 + 300, size - 5)]
            segments = .allocate(capacity: cuts.count)
            for (i, cut) in cuts.enumerated() {
                segments![i] = iovec(iov_base: base + cut.0, iov_len: cut.1 - cut.0)
                byteCount += cut.1 - cut.0
            }
        case .bvec:
            bioVecs = .allocate(capacity: pages)
            for (i, page) in buffer.enumerated() {
                let offset = i == 0 ? 100 : 0
                bioVecs![i] = BioVec(page: page, offset: offset, length: pageSize - offset - (i == pages - 1 ? 5 : 0))
                byteCount += bioVecs![i].length
            }
        case .folioq:
            queue = FolioQueue.chain(of: buffer.map { Folio(head: $0, order: 0) }, segmentCapacity: 8)
            byteCount = size - 100
        case .xarray:
            let cache = PageCache()
            var index = 0
            while index < pages {
                let order = min(2, (pages - index).trailingZeroBitCount)
                let folio = try pool.allocateFolio(order: order)
                try cache.insert(folio, at: index)
                index += 1 << order
            }
            self.cache = cache
            startOffset = 100
            byteCount = size - 105
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
        self.cache = cache
        byteCount = data.count
    }

    deinit {
        segments?.deallocate()
        bioVecs?.deallocate()
    }

    /// A fresh iterator over the sample.
    func makeIterator(pipe: PagePipe?) throws -> IOIterator {
        switch kind {
        case .ubuf: try IOIterator(ubufAt: UInt(bitPattern: mapping.baseAddress) + 100, count: byteCount, direction: direction)
        case .iovec: try IOIterator(iovecs: UnsafeBufferPointer(segments!), direction: direction)
        case .kvec: try IOIterator(kvecs: UnsafeBufferPointer(segments!), direction: direction)
        case .bvec: try IOIterator(bvecs: UnsafeBufferPointer(bioVecs!), direction: direction)
        case .xarray: try IOIterator(pageCache: cache!, position: startOffset, count: byteCount, direction: direction)
        case .folioq: IOIterator(folioQueue: queue!, offset: 100, count: byteCount, direction: direction)
        case .pipe: try IOIterator(pipe: pipe!, count: byteCount, direction: direction)
        case .discard: IOIterator(discarding: byteCount)
        }
    }
}
