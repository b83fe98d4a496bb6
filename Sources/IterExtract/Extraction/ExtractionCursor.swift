#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a walk over a segment array (IOVEC, KVEC, BVEC) ended: the bytes it took, the
/// segment it stopped in (counted from the first remaining one) and the offset into it.
@usableFromInline
package struct SegmentPosition {
    /// The bytes taken since the walk began.
    @usableFromInline package var bytes: Int
    /// The segment the walk stopped in, counted from the cursor's first remaining segment.
    @usableFromInline package var index: Int
    /// The offset into that segment.
    @usableFromInline package var offset: Int

    @inlinable
    package init(bytes: Int, index: Int, offset: Int) {
        self.bytes = bytes
        self.index = index
        self.offset = offset
    }
}

/// An element of a segment array: an `iovec` (IOVEC, KVEC) or a ``BioVec`` (BVEC).
/// Lets the extractors' loops read any segment array without a closure per element.
///
/// Public, not `package`: the extractors of other modules inline loops over it into
/// their public inlinable entry points, and a client outside this package (the
/// benchmarks) must find the conformances of `iovec` and ``BioVec`` when it
/// specialises them; the compiler cannot find a package conformance there.
public protocol SegmentElement {
    /// The address of the segment's first byte.
    var segmentAddress: UInt { get }
    /// The segment's length in bytes.
    var segmentLength: Int { get }
}

extension iovec: SegmentElement {
    /// `iov_base` as an address.
    @inlinable public var segmentAddress: UInt { UInt(bitPattern: iov_base) }
    /// `iov_len`.
    @inlinable public var segmentLength: Int { iov_len }
}

extension BioVec: SegmentElement {
    /// The address of the element's first byte.
    @inlinable public var segmentAddress: UInt { address }
    /// The element's length.
    @inlinable public var segmentLength: Int { length }
}

/// The one walk every extractor drives: the iterator itself, lent in place to the
/// extraction by ``IOIterator/withExtractionCursor(_:)``. It moves as memory is
/// described; when the extraction succeeds the iterator is left where the cursor
/// ended, and when it fails the iterator is put back where it was. The cursor works
/// on the iterator where it lies, neither copying it nor retaining its object, so a
/// call that hands out one segment costs no more than advancing the iterator itself.
///
/// Segment kinds (IOVEC, KVEC, BVEC) offer their remaining segment array and the
/// offset into its first segment, for loops that cannot afford a closure per segment;
/// such a loop reports where it stopped with ``move(to:)``. Every kind offers
/// ``walk(maxBytes:holes:_:)`` and ``consume(maxBytes:holes:_:)``, piece by piece.
/// Only IterExtract reads the iterator's segment internals; the page, scatter and SGE
/// extractors read them through this type.
@usableFromInline
package struct ExtractionCursor: ~Copyable {
    /// The lent iterator; valid for the body of ``IOIterator/withExtractionCursor(_:)`` only.
    @usableFromInline let lent: UnsafeMutablePointer<IOIterator>

    /// A cursor over the iterator at `lent`, from its position.
    @inlinable
    init(lending lent: UnsafeMutablePointer<IOIterator>) {
        self.lent = lent
    }

    /// The lent iterator, in place.
    @inlinable
    var iterator: IOIterator {
        unsafeAddress { UnsafePointer(lent) }
        nonmutating unsafeMutableAddress { lent }
    }

    /// The iterator's kind.
    @inlinable package var kind: IOIteratorKind { iterator.kind }

    /// The bytes left after the cursor's position.
    @inlinable package var count: Int { iterator.count }

    /// IOVEC, KVEC: the `iovec`s from the current one on; the first is
    /// ``segmentOffset`` bytes in.
    @inlinable
    package var remainingIOVecs: UnsafeBufferPointer<iovec> {
        UnsafeBufferPointer(start: iterator.iovecs, count: iterator.segmentCount)
    }

    /// BVEC: the ``BioVec``s from the current one on; the first is ``segmentOffset`` bytes in.
    @inlinable
    package var remainingBioVecs: UnsafeBufferPointer<BioVec> {
        UnsafeBufferPointer(start: iterator.bioVecs, count: iterator.segmentCount)
    }

    /// IOVEC, KVEC, BVEC: how far into its first remaining segment the cursor is.
    @inlinable package var segmentOffset: Int { iterator.offset }

    /// IOVEC, KVEC, BVEC: moves to where a loop over the remaining segments stopped,
    /// `position.bytes` bytes on, dropping finished and empty segments as
    /// `IOIterator.advance(_:)` does. `position` must be where the walk really ended.
    @inlinable
    package mutating func move(to position: SegmentPosition) {
        iterator.moveToSegment(position.index, offset: position.offset, consumed: position.bytes)
    }

    /// Walks from the cursor's position without moving it; see `IOIterator.walk(maxBytes:holes:_:)`.
    @inlinable @discardableResult
    package func walk<E: Error>(
        maxBytes: Int, holes: HolePolicy = .stop, _ body: (MemoryRange) throws(E) -> Int
    ) throws(E) -> Int {
        try Self.walk(&lent.pointee, maxBytes: maxBytes, holes: holes, body)
    }

    /// Walks `iterator` in place: an `inout` borrow, which reads the lent iterator
    /// without copying it (and retaining its object) as a plain read through the
    /// pointer would.
    @inlinable
    static func walk<E: Error>(
        _ iterator: inout IOIterator, maxBytes: Int, holes: HolePolicy, _ body: (MemoryRange) throws(E) -> Int
    ) throws(E) -> Int {
        try iterator.walk(maxBytes: maxBytes, holes: holes, body)
    }

    /// Walks and moves past the bytes `body` took; see `IOIterator.consume(maxBytes:holes:_:)`.
    @inlinable @discardableResult
    package mutating func consume<E: Error>(
        maxBytes: Int, holes: HolePolicy = .stop, _ body: (MemoryRange) throws(E) -> Int
    ) throws(E) -> Int {
        try iterator.consume(maxBytes: maxBytes, holes: holes, body)
    }

    /// Moves past `bytes` that a walk offered; see `IOIterator.advance(past:holes:)`.
    @inlinable
    package mutating func advance(past bytes: Int, holes: HolePolicy = .stop) {
        iterator.advance(past: bytes, holes: holes)
    }

    /// Moves past the next `n` bytes; see `IOIterator.advance(_:)`.
    @inlinable
    package mutating func advance(_ n: Int) {
        iterator.advance(n)
    }

    /// PIPE: appends up to `n` bytes to the pipe, `fill` initialising each new region;
    /// returns the bytes appended.
    package mutating func appendToPipe(_ n: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) -> Int {
        iterator.appendToPipe(n, fill: fill)
    }

    /// PIPE: the free bytes at the end of the newest buffer the iterator appended.
    package var roomInNewestPipeBuffer: Int { iterator.roomInNewestPipeBuffer }
}

extension SegmentElement {
    /// The segment's address and length.
    @inlinable public var segmentRange: (address: UInt, length: Int) { (segmentAddress, segmentLength) }
}

/// Where an iterator was when it lent itself to an extraction: its moving parts, for
/// putting it back when the extraction fails. Only FOLIOQ moves its object (from
/// segment to segment, and the chain holds its segments only forwards), so only a
/// FOLIOQ start holds one, retained until ``release()``; the other kinds save no
/// reference and cost no reference counting.
@usableFromInline
struct ExtractionStart {
    @usableFromInline let count: Int
    @usableFromInline let offset: Int
    @usableFromInline let segments: UnsafeRawPointer?
    @usableFromInline let segmentCount: Int
    @usableFromInline let slot: Int
    @usableFromInline let folioQueueSegment: Unmanaged<AnyObject>?

    @inlinable
    init(_ iterator: borrowing IOIterator) {
        count = iterator.count
        offset = iterator.offset
        segments = iterator.segments
        segmentCount = iterator.segmentCount
        slot = iterator.slot
        folioQueueSegment = iterator.kind == .folioq ? Unmanaged.passRetained(iterator.object!) : nil
    }

    /// Gives back the FOLIOQ segment the start holds.
    @inlinable
    func release() {
        folioQueueSegment?.release()
    }
}

extension IOIterator {
    /// Lends the iterator to an extraction as an ``ExtractionCursor``: `body` describes
    /// memory and moves the cursor. When `body` returns, the iterator is where the
    /// cursor ended; when it throws, the iterator is back where it was (for PIPE, the
    /// bytes appended meanwhile are dropped). The extractors' one way to move an
    /// iterator, so that an extraction that fails leaves no trace on it.
    @inlinable
    package mutating func withExtractionCursor<R, E: Error>(
        _ body: (inout ExtractionCursor) throws(E) -> R
    ) throws(E) -> R {
        let start = ExtractionStart(self)
        defer { start.release() }
        do throws(E) {
            return try withUnsafeMutablePointer(to: &self) { (lent) throws(E) -> R in
                var cursor = ExtractionCursor(lending: lent)
                return try body(&cursor)
            }
        } catch {
            rewind(to: start)
            throw error
        }
    }

    /// Puts the iterator back at `start`, where it lent itself to a failed extraction.
    @usableFromInline
    mutating func rewind(to start: ExtractionStart) {
        if kind == .pipe {
            revert(start.count - count)
            return
        }
        count = start.count
        offset = start.offset
        segments = start.segments
        segmentCount = start.segmentCount
        slot = start.slot
        if let segment = start.folioQueueSegment { object = segment.takeUnretainedValue() }
    }
}
