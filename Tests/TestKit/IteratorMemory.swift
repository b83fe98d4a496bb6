import Glibc
import IterExtract

/// Memory, and what each iterator kind needs to describe it: the range of UBUF, the
/// `iovec` array of IOVEC and KVEC, the ``BioVec`` array of BVEC, the page cache of
/// XARRAY and the folio queue of FOLIOQ.
///
/// The one builder of iterator memory for the tests, the examples and the benchmarks:
/// a fixture decides the layout (a whole KUnit buffer, random segments, a benchmark
/// workload) and hands the descriptions here, which owns the arrays and makes the
/// iterators. Every iterator made from it is valid for as long as it lives.
public final class IteratorMemory: @unchecked Sendable {
    /// The kinds that describe memory (and not a pipe or nothing).
    public static let kinds: [IOIteratorKind] = [.ubuf, .iovec, .kvec, .bvec, .xarray, .folioq]

    /// The pool the memory comes from.
    public let pool: PagePool
    /// The virtually contiguous view of the memory, where there is one.
    public let mapping: VirtualMapping?
    /// UBUF: the buffer.
    public let userBuffer: MemoryRange?
    /// IOVEC and KVEC: the segments.
    public let segments: UnsafeBufferPointer<iovec>?
    /// BVEC: the elements.
    public let bioVecs: UnsafeBufferPointer<BioVec>?
    /// XARRAY: the cache, the byte position the iterator starts at, and its count.
    public let pageCache: (cache: PageCache, position: Int, count: Int)?
    /// FOLIOQ: the queue, the offset into its first folio, and the count.
    public let folioQueue: (queue: FolioQueue, offset: Int, count: Int)?

    /// Memory from `pool` (seen through `mapping`, if any) described by whichever kinds
    /// are given: `segments` for IOVEC and KVEC, `bioVecs` for BVEC. The arrays are copied.
    public init(pool: PagePool, mapping: VirtualMapping? = nil, userBuffer: MemoryRange? = nil,
                segments: [MemoryRange]? = nil, bioVecs: [BioVec]? = nil,
                pageCache: (cache: PageCache, position: Int, count: Int)? = nil,
                folioQueue: (queue: FolioQueue, offset: Int, count: Int)? = nil) {
        self.pool = pool
        self.mapping = mapping
        self.userBuffer = userBuffer
        self.segments = segments.map { ranges in
            UnsafeBufferPointer(Self.copy(ranges.map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: $0.address), iov_len: $0.length) }))
        }
        self.bioVecs = bioVecs.map { UnsafeBufferPointer(Self.copy($0)) }
        self.pageCache = pageCache
        self.folioQueue = folioQueue
    }

    deinit {
        segments?.deallocate()
        bioVecs?.deallocate()
    }

    /// The BVEC element over `range`, which lies within one page's frames of the pool's
    /// direct view (a BVEC element may run on into the following frames).
    public static func bioVec(over range: MemoryRange) -> BioVec {
        BioVec(page: Page(frame: range.address >> 12), offset: range.pageOffset, length: range.length)
    }

    /// A fresh iterator of `kind` at the start of its description.
    ///
    /// - Throws: what the iterator's initializer throws for the description.
    public func makeIterator(_ kind: IOIteratorKind, _ direction: IODirection) throws(IOIteratorError) -> IOIterator {
        switch kind {
        case .ubuf:
            let buffer = description(userBuffer, kind)
            return try IOIterator(ubufAt: buffer.address, count: buffer.length, direction: direction)
        case .iovec: return try IOIterator(iovecs: description(segments, kind), direction: direction)
        case .kvec: return try IOIterator(kvecs: description(segments, kind), direction: direction)
        case .bvec: return try IOIterator(bvecs: description(bioVecs, kind), direction: direction)
        case .xarray:
            let (cache, position, count) = description(pageCache, kind)
            return try IOIterator(pageCache: cache, position: position, count: count, direction: direction)
        case .folioq:
            let (queue, offset, count) = description(folioQueue, kind)
            return IOIterator(folioQueue: queue, offset: offset, count: count, direction: direction)
        default: preconditionFailure("no memory for \(kind)")
        }
    }

    /// A fresh iterator of `kind`. The fixture described the memory, so making the
    /// iterator cannot throw.
    public func iterator(_ kind: IOIteratorKind, _ direction: IODirection = .source) -> IOIterator {
        try! makeIterator(kind, direction)
    }

    private func description<T>(_ value: T?, _ kind: IOIteratorKind) -> T {
        guard let value else { preconditionFailure("the memory has no \(kind) description") }
        return value
    }

    private static func copy<T>(_ elements: [T]) -> UnsafeMutableBufferPointer<T> {
        let storage = UnsafeMutableBufferPointer<T>.allocate(capacity: max(elements.count, 1))
        _ = storage.initialize(from: elements)
        return UnsafeMutableBufferPointer(rebasing: storage[..<elements.count])
    }
}
