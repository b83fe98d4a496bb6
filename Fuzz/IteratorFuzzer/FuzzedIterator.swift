import Glibc
import IterExtract
import TestKit

/// An iterator of any memory kind decoded from fuzzer bytes, over a fixed arena, with
/// the reference model of the bytes it describes.
final class FuzzedIterator {
    static let arenaPages = 256
    static let pool: PagePool = {
        let pool = try! PagePool(pageCount: arenaPages)
        for i in 0..<pool.byteCount { pool.baseAddress.storeBytes(of: UInt8(truncatingIfNeeded: i &* 131 &+ i >> 9), toByteOffset: i, as: UInt8.self) }
        return pool
    }()

    let kind: IOIteratorKind
    var ranges: [MemoryRange] = []
    private var segments: [iovec] = []
    private var bioVecs: [BioVec] = []
    private var cache: PageCache?
    private var queue: FolioQueue?
    private var start = 0

    init(_ input: inout FuzzInput) {
        let kinds: [IOIteratorKind] = [.ubuf, .iovec, .kvec, .bvec, .xarray, .folioq]
        kind = kinds[input.byte() % kinds.count]
        let pool = Self.pool
        let base = UInt(bitPattern: pool.baseAddress)
        let arena = pool.byteCount
        let pieces = 1 + input.byte() % 12
        switch kind {
        case .ubuf, .iovec, .kvec:
            for _ in 0..<(kind == .ubuf ? 1 : pieces) {
                let offset = input.number(below: arena)
                let length = input.number(below: min(arena - offset, 40_000) + 1)
                segments.append(iovec(iov_base: UnsafeMutableRawPointer(bitPattern: base + UInt(offset)), iov_len: length))
                ranges.append(MemoryRange(address: base + UInt(offset), length: length))
            }
        case .bvec:
            for _ in 0..<pieces {
                let page = input.number(below: Self.arenaPages)
                let offset = input.number(below: 3 * pageSize)
                let room = (Self.arenaPages - page) * pageSize - offset
                let length = room > 0 ? input.number(below: min(room, 20_000) + 1) : 0
                let element = BioVec(page: Page(frame: pool.firstFrame + UInt(page)), offset: room > 0 ? offset : 0, length: length)
                bioVecs.append(element)
                ranges.append(MemoryRange(address: element.address, length: length))
            }
        case .xarray:
            let cache = PageCache()
            var index = 0
            var stopped = false
            for _ in 0..<pieces {
                let order = input.byte() % 4
                index = (index + input.byte() % 2 * 3 + (1 << order) - 1) & ~((1 << order) - 1)
                guard index + (1 << order) <= Self.arenaPages else { break }
                let folio = Folio(head: Page(frame: pool.firstFrame + UInt(index)), order: order)
                if let last = cache.allEntries.last, last.endIndex != index { stopped = true }
                try! cache.insert(folio, at: index)
                if !stopped { ranges.append(MemoryRange(address: folio.address, length: folio.size)) }
                index += 1 << order
            }
            if let first = cache.allEntries.first {
                start = first.index * pageSize + input.number(below: first.folio.size)
                ranges[0].address += UInt(start - first.index * pageSize)
                ranges[0].length -= start - first.index * pageSize
            }
            self.cache = cache
        case .folioq:
            var folios: [Folio] = []
            for _ in 0..<pieces {
                let order = input.byte() % 4
                let index = input.number(below: Self.arenaPages >> order) << order
                folios.append(Folio(head: Page(frame: pool.firstFrame + UInt(index)), order: order))
                ranges.append(MemoryRange(address: folios.last!.address, length: folios.last!.size))
            }
            queue = FolioQueue.chain(of: folios, segmentCapacity: 1 + input.byte() % 4)
            start = input.number(below: folios[0].size)
            ranges[0].address += UInt(start)
            ranges[0].length -= start
        default:
            preconditionFailure()
        }
    }

    /// Calls `body` with a fresh iterator, which must not escape it.
    func withIterator<R>(_ body: (inout IOIterator) -> R) -> R {
        let total = ranges.reduce(0) { $0 + $1.length }
        switch kind {
        case .ubuf:
            var iterator = try! IOIterator(ubufAt: ranges[0].address, count: ranges[0].length, direction: .destination)
            return body(&iterator)
        case .iovec, .kvec:
            return segments.withUnsafeBufferPointer { segments in
                var iterator = kind == .iovec ? try! IOIterator(iovecs: segments, direction: .destination)
                                              : try! IOIterator(kvecs: segments, direction: .destination)
                return body(&iterator)
            }
        case .bvec:
            return bioVecs.withUnsafeBufferPointer { elements in
                var iterator = try! IOIterator(bvecs: elements, direction: .destination)
                return body(&iterator)
            }
        case .xarray:
            var iterator = try! IOIterator(pageCache: cache!, position: start, count: total, direction: .destination)
            return body(&iterator)
        case .folioq:
            var iterator = IOIterator(folioQueue: queue!, offset: start, count: total, direction: .destination)
            return body(&iterator)
        default:
            preconditionFailure()
        }
    }
}
