#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A description of I/O memory and a position in it: the userspace counterpart of
/// the kernel's `struct iov_iter`.
///
/// An iterator is a small value. It never owns the memory it describes; it borrows
/// its segment array (IOVEC, KVEC, BVEC) and buffers, which must outlive every use of
/// it. Copying or advancing an iterator never allocates, so saving one is as cheap
/// as `let saved = iterator`.
///
/// Operations are split by feature: construction (this file), import of `iovec`
/// arrays, advancing and reverting, copying, walking, page counts, and extraction.
public struct IOIterator {
    /// How the memory is described.
    public let kind: IOIteratorKind
    /// Which way data moves.
    public let direction: IODirection
    /// The number of bytes left from the current position.
    public internal(set) var count: Int

    /// The offset into the current segment, folio, buffer, or (UBUF, XARRAY) range.
    @usableFromInline var offset: Int
    /// UBUF: the buffer's address. XARRAY: the starting byte position in the cache.
    @usableFromInline var base: UInt
    /// IOVEC, KVEC: the current `iovec`. BVEC: the current ``BioVec``.
    @usableFromInline var segments: UnsafeRawPointer?
    /// The first segment of the array, below which ``revert(_:)`` must not go.
    @usableFromInline var firstSegment: UnsafeRawPointer?
    /// The number of segments from the current one on (the kernel's `nr_segs`).
    @usableFromInline var segmentCount: Int
    /// XARRAY: the ``PageCache``. FOLIOQ: the current ``FolioQueue`` segment. PIPE: the ``PagePipe``.
    @usableFromInline var object: AnyObject?
    /// FOLIOQ: the current slot. PIPE: the pipe's head when the iterator was made.
    @usableFromInline var slot: Int

    @usableFromInline
    init(kind: IOIteratorKind, direction: IODirection, count: Int, base: UInt = 0,
         segments: UnsafeRawPointer? = nil, segmentCount: Int = 0, object: AnyObject? = nil, slot: Int = 0,
         offset: Int = 0) {
        precondition(count >= 0, "an iterator's count is not negative")
        self.kind = kind
        self.direction = direction
        self.count = count
        self.offset = offset
        self.base = base
        self.segments = segments
        self.firstSegment = segments
        self.segmentCount = segmentCount
        self.object = object
        self.slot = slot
    }

    // MARK: UBUF

    /// A UBUF iterator over one buffer whose bytes are the source of a transfer.
    ///
    /// A buffer pointer stands for memory, so one whose bytes would wrap around the
    /// address space is a programmer error and traps; for an address and length that
    /// come from elsewhere, use ``init(ubufAt:count:direction:)``.
    public init(source buffer: UnsafeRawBufferPointer) {
        self.init(buffer: UInt(bitPattern: buffer.baseAddress), count: buffer.count, direction: .source)
    }

    /// A UBUF iterator over one buffer that a transfer fills.
    ///
    /// As for ``init(source:)``, a buffer that wraps around the address space traps.
    public init(destination buffer: UnsafeMutableRawBufferPointer) {
        self.init(buffer: UInt(bitPattern: buffer.baseAddress), count: buffer.count, direction: .destination)
    }

    private init(buffer address: UInt, count: Int, direction: IODirection) {
        precondition(!address.addingReportingOverflow(UInt(count)).overflow,
                     "a buffer of \(count) bytes at 0x\(String(address, radix: 16)) wraps around the address space")
        self.init(kind: .ubuf, direction: direction, count: count, base: address)
    }

    /// A UBUF iterator over `count` bytes at `address`. The kernel's `iov_iter_ubuf`.
    ///
    /// - Throws: ``IOIteratorError/invalidLength(segment:length:)`` for a negative
    ///   `count`; ``IOIteratorError/addressOverflow(address:length:)`` when the bytes
    ///   would run past the top of the address space (the last address is
    ///   `UInt.max - 1`, as for ``importing(_:direction:)``).
    public init(ubufAt address: UInt, count: Int, direction: IODirection) throws(IOIteratorError) {
        try Self.checkSegment(0, address: address, length: count)
        self.init(kind: .ubuf, direction: direction, count: count, base: address)
    }

    /// Calls `body` with a source UBUF iterator over `bytes`.
    public static func withSource<R, E: Error>(
        _ bytes: [UInt8], _ body: (inout IOIterator) throws(E) -> R
    ) throws(E) -> R {
        try withoutActuallyEscaping(body) { (body) throws(E) -> R in
            let result: Result<R, E> = bytes.withUnsafeBytes { raw in
                var iterator = IOIterator(source: raw)
                return Result { () throws(E) -> R in try body(&iterator) }
            }
            return try result.get()
        }
    }

    /// Calls `body` with a source UBUF iterator over the bytes of `span`.
    public static func withSource<R, E: Error>(
        _ span: RawSpan, _ body: (inout IOIterator) throws(E) -> R
    ) throws(E) -> R {
        try withoutActuallyEscaping(body) { (body) throws(E) -> R in
            let result: Result<R, E> = span.withUnsafeBytes { raw in
                var iterator = IOIterator(source: raw)
                return Result { () throws(E) -> R in try body(&iterator) }
            }
            return try result.get()
        }
    }

    /// Calls `body` with a destination UBUF iterator over `bytes`.
    public static func withDestination<R, E: Error>(
        _ bytes: inout [UInt8], _ body: (inout IOIterator) throws(E) -> R
    ) throws(E) -> R {
        try withoutActuallyEscaping(body) { (body) throws(E) -> R in
            let result: Result<R, E> = bytes.withUnsafeMutableBytes { raw in
                var iterator = IOIterator(destination: raw)
                return Result { () throws(E) -> R in try body(&iterator) }
            }
            return try result.get()
        }
    }

    // MARK: Segment arrays

    /// An IOVEC iterator over user buffers. The kernel's `iov_iter_init`.
    ///
    /// `count` defaults to the sum of the lengths. The array must outlive the iterator.
    /// The segments are checked once, here, so that no later operation can trap on
    /// them or wrap around the address space. To apply the kernel's import limits as
    /// well (at most ``maxIOVecSegments`` segments, a total clamped to
    /// ``maxReadWriteCount``), use ``importing(_:direction:)`` instead.
    ///
    /// - Throws: ``IOIteratorError/invalidLength(segment:length:)`` for a negative
    ///   length; ``IOIteratorError/addressOverflow(address:length:)`` for a segment
    ///   that runs past the top of the address space;
    ///   ``IOIteratorError/lengthOverflow(segment:)`` when the lengths add up past
    ///   `Int.max`; ``IOIteratorError/countExceedsSegments(count:total:)`` for a
    ///   negative `count` or one larger than the lengths add up to.
    public init(iovecs: UnsafeBufferPointer<iovec>, direction: IODirection, count: Int? = nil) throws(IOIteratorError) {
        self.init(kind: .iovec, direction: direction,
                  count: try Self.checkedCount(of: iovecs, count: count) { (UInt(bitPattern: $0.iov_base), $0.iov_len) },
                  segments: UnsafeRawPointer(iovecs.baseAddress), segmentCount: iovecs.count)
    }

    /// A KVEC iterator over library-owned buffers. The kernel's `iov_iter_kvec`.
    ///
    /// The segments are checked as ``init(iovecs:direction:count:)`` checks them, and
    /// it throws the same errors.
    public init(kvecs: UnsafeBufferPointer<iovec>, direction: IODirection, count: Int? = nil) throws(IOIteratorError) {
        self.init(kind: .kvec, direction: direction,
                  count: try Self.checkedCount(of: kvecs, count: count) { (UInt(bitPattern: $0.iov_base), $0.iov_len) },
                  segments: UnsafeRawPointer(kvecs.baseAddress), segmentCount: kvecs.count)
    }

    /// A BVEC iterator over (page, offset, length) triples. The kernel's `iov_iter_bvec`.
    ///
    /// The elements are checked as ``init(iovecs:direction:count:)`` checks segments
    /// (each from its ``BioVec/address``), and it throws the same errors.
    public init(bvecs: UnsafeBufferPointer<BioVec>, direction: IODirection, count: Int? = nil) throws(IOIteratorError) {
        self.init(kind: .bvec, direction: direction,
                  count: try Self.checkedCount(of: bvecs, count: count) { ($0.address, $0.length) },
                  segments: UnsafeRawPointer(bvecs.baseAddress), segmentCount: bvecs.count)
    }

    /// Checks one segment of caller data: a length that is not negative, and bytes
    /// that end below the top of the address space.
    static func checkSegment(_ index: Int, address: UInt, length: Int) throws(IOIteratorError) {
        guard length >= 0 else { throw .invalidLength(segment: index, length: length) }
        guard !address.addingReportingOverflow(UInt(length)).overflow else {
            throw .addressOverflow(address: address, length: length)
        }
    }

    /// Checks every segment of an array (``checkSegment(_:address:length:)``) and that
    /// the lengths add up within `Int`, and returns the iterator's count: `count`, at
    /// most that sum, or the sum.
    private static func checkedCount<Segment>(
        of segments: UnsafeBufferPointer<Segment>, count: Int?, range: (Segment) -> (address: UInt, length: Int)
    ) throws(IOIteratorError) -> Int {
        var total = 0
        for index in segments.indices {
            let segment = range(segments[index])
            try checkSegment(index, address: segment.address, length: segment.length)
            let (sum, overflow) = total.addingReportingOverflow(segment.length)
            guard !overflow else { throw .lengthOverflow(segment: index) }
            total = sum
        }
        guard let count else { return total }
        guard (0...total).contains(count) else { throw .countExceedsSegments(count: count, total: total) }
        return count
    }

    // MARK: Page cache, folio queue, pipe, discard

    /// An XARRAY iterator over `count` bytes of `cache` from byte `position`.
    /// The kernel's `iov_iter_xarray`.
    ///
    /// A negative `count` is a programmer error and traps.
    ///
    /// - Throws: ``IOIteratorError/invalidPosition(position:count:)`` when `position`
    ///   is negative or `position + count` passes `Int.max`.
    public init(pageCache cache: PageCache, position: Int, count: Int, direction: IODirection) throws(IOIteratorError) {
        precondition(count >= 0, "an iterator's count is not negative")
        guard position >= 0, !position.addingReportingOverflow(count).overflow else {
            throw .invalidPosition(position: position, count: count)
        }
        self.init(kind: .xarray, direction: direction, count: count, base: UInt(position), object: cache)
    }

    /// A FOLIOQ iterator over `count` bytes of a folio-queue chain, from `offset` bytes
    /// into the folio in `slot` of `segment`. The kernel's `iov_iter_folio_queue`.
    ///
    /// The chain may hold empty segments anywhere. `slot` may be `segment.slotCount`
    /// (the start of the next non-empty segment), and `offset` may run past the folio
    /// into the ones after it; the iterator starts at the byte it names. A `slot`
    /// outside the segment or a negative `offset` or `count` is a programmer error and traps.
    public init(folioQueue segment: FolioQueue, slot: Int = 0, offset: Int = 0, count: Int, direction: IODirection) {
        precondition(slot >= 0 && slot <= segment.slotCount, "slot \(slot) is outside the segment")
        precondition(offset >= 0, "a folio offset is not negative")
        self.init(kind: .folioq, direction: direction, count: count, object: segment, slot: slot, offset: offset)
        advanceFolioQueue(0)
    }

    /// A PIPE iterator that appends up to `count` bytes to `pipe`.
    ///
    /// The count is clamped to what the pipe's free buffers can hold; bytes go into
    /// fresh pages, never into a buffer the iterator did not append. A negative
    /// `count` is a programmer error and traps.
    /// - Throws: ``IOIteratorError/pipeIsDestinationOnly`` for a source.
    public init(pipe: PagePipe, count: Int, direction: IODirection = .destination) throws(IOIteratorError) {
        guard direction == .destination else { throw .pipeIsDestinationOnly }
        let room = (pipe.capacity - pipe.occupancy) * pageSize
        self.init(kind: .pipe, direction: .destination, count: min(count, room), object: pipe, slot: pipe.head)
    }

    /// A DISCARD iterator: `count` bytes that go nowhere. The kernel's `iov_iter_discard`.
    ///
    /// A negative `count` is a programmer error and traps.
    public init(discarding count: Int) {
        self.init(kind: .discard, direction: .destination, count: count)
    }

    // MARK: Properties

    /// Whether the memory is the caller's (UBUF or IOVEC).
    @inlinable public var isUserBacked: Bool { kind.isUserBacked }

    /// Whether extraction pins the memory it lists (true exactly for user-backed kinds),
    /// so that the consumer must release the pins after the I/O.
    /// Mirrors the kernel's `iov_iter_extract_will_pin`.
    @inlinable public var extractionWillPin: Bool { kind.isUserBacked }

    /// The number of segments from the current one on (IOVEC, KVEC, BVEC); 1 for UBUF
    /// and 0 for the other kinds. The kernel's `nr_segs`.
    public var remainingSegmentCount: Int {
        switch kind {
        case .iovec, .kvec, .bvec: segmentCount
        case .ubuf: 1
        default: 0
        }
    }

    /// FOLIOQ: the current segment and slot.
    public var folioQueuePosition: (segment: FolioQueue, slot: Int, offset: Int)? {
        kind == .folioq ? (unsafeDowncast(object!, to: FolioQueue.self), slot, offset) : nil
    }

    /// XARRAY: the byte position in the page cache the iterator is at.
    public var pageCachePosition: Int? { kind == .xarray ? Int(base) + offset : nil }

    @inlinable var iovecs: UnsafePointer<iovec> { segments!.assumingMemoryBound(to: iovec.self) }
    @inlinable var bioVecs: UnsafePointer<BioVec> { segments!.assumingMemoryBound(to: BioVec.self) }
    @inlinable var pageCache: PageCache { unsafeDowncast(object!, to: PageCache.self) }
    @inlinable var folioQueue: FolioQueue { unsafeDowncast(object!, to: FolioQueue.self) }
    @inlinable var pipe: PagePipe { unsafeDowncast(object!, to: PagePipe.self) }
}
