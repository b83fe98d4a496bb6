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
@usableFromInline
package protocol SegmentElement {
    /// The address of the segment's first byte.
    var segmentAddress: UInt { get }
    /// The segment's length in bytes.
    var segmentLength: Int { get }
}

extension iovec: SegmentElement {
    @inlinable package var segmentAddress: UInt { UInt(bitPattern: iov_base) }
    @inlinable package var segmentLength: Int { iov_len }
}

extension BioVec: SegmentElement {
    @inlinable package var segmentAddress: UInt { address }
    @inlinable package var segmentLength: Int { length }
}

/// The one walk every extractor drives: a working copy of an iterator that moves as
/// memory is described, and is committed to the caller's iterator only once the
/// extraction succeeded (its pins taken, its output kept). An extraction that fails
/// drops the cursor, and the iterator has not moved.
///
/// Segment kinds (IOVEC, KVEC, BVEC) offer their remaining segment array and the
/// offset into its first segment, for loops that cannot afford a closure per segment;
/// such a loop reports where it stopped with ``move(to:)``. Every kind offers
/// ``walk(maxBytes:holes:_:)`` and ``consume(maxBytes:holes:_:)``, piece by piece.
/// Only IterExtract reads the iterator's segment internals; the page, scatter and SGE
/// extractors read them through this type.
@usableFromInline
package struct ExtractionCursor {
    /// The working copy.
    @usableFromInline var iterator: IOIterator

    /// A cursor at `iterator`'s position.
    @inlinable
    package init(_ iterator: IOIterator) {
        self.iterator = iterator
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

    /// Moves `iterator` to the cursor's position: the extraction succeeded.
    @inlinable
    package consuming func commit(to iterator: inout IOIterator) {
        iterator = self.iterator
    }
}

extension SegmentElement {
    /// The segment's address and length.
    @inlinable package var segmentRange: (address: UInt, length: Int) { (segmentAddress, segmentLength) }
}
