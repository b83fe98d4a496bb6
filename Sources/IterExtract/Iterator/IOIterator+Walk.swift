#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A virtually contiguous piece of the memory an iterator describes.
@frozen
public struct MemoryRange: Hashable, Sendable, CustomStringConvertible {
    /// The address of the first byte.
    public var address: UInt
    /// The number of bytes.
    public var length: Int

    /// The `length` bytes at `address`.
    @inlinable
    public init(address: UInt, length: Int) {
        self.address = address
        self.length = length
    }

    /// The range's bytes.
    @inlinable
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: address), count: length)
    }

    /// The start address in hexadecimal and the length, as `0x7f0000001000+4096`.
    public var description: String { "0x\(String(address, radix: 16))+\(length)" }
}

/// What a walk over an XARRAY iterator does at an index with no folio.
public enum HolePolicy: Sendable {
    /// End the walk (page extraction and copies do this).
    case stop
    /// Continue with the next folio, at its start (extraction to a scatter table does this).
    case skip
}

extension IOIterator {
    /// Walks the memory from the current position without moving it, offering `body`
    /// each piece in the kind's natural unit: the buffer (UBUF), each segment (IOVEC,
    /// KVEC), each ``BioVec`` (BVEC), each folio (XARRAY, FOLIOQ). Empty segments are
    /// skipped. `body` returns how many bytes of the piece it took; the walk ends
    /// when it takes fewer than offered, after `maxBytes`, or at the end of the
    /// iterator. Returns the bytes taken.
    ///
    /// A DISCARD iterator has no memory and yields nothing. A PIPE iterator's memory
    /// does not exist until it is appended, so walking one is a programmer error.
    @inlinable @discardableResult
    public func walk<E: Error>(
        maxBytes: Int, holes: HolePolicy = .stop, _ body: (MemoryRange) throws(E) -> Int
    ) throws(E) -> Int {
        let limit = min(maxBytes, count)
        if limit <= 0 { return 0 }
        switch kind {
        case .ubuf:
            return try body(MemoryRange(address: base &+ UInt(offset), length: limit))
        case .iovec, .kvec:
            return try walkSegments(limit, body, segment: iovecSegment).bytes
        case .bvec:
            return try walkSegments(limit, body, segment: bioVecSegment).bytes
        case .xarray:
            return try walkPageCache(limit, holes: holes, body)
        case .folioq:
            return try walkFolioQueue(limit, body)
        case .pipe:
            preconditionFailure("a PIPE iterator has no memory to walk until it is written")
        case .discard:
            return 0
        }
    }

    /// Walks the memory like ``walk(maxBytes:holes:_:)`` and advances past the bytes
    /// `body` took, in one pass over a segment array; equivalent to a walk followed
    /// by ``advance(past:holes:)``. When `body` throws, the iterator has not moved.
    ///
    /// The kernel's `iterate_and_advance`.
    @inlinable @discardableResult
    public mutating func consume<E: Error>(
        maxBytes: Int, holes: HolePolicy = .stop, _ body: (MemoryRange) throws(E) -> Int
    ) throws(E) -> Int {
        switch kind {
        case .iovec, .kvec:
            return try consumeSegments(min(maxBytes, count), body, segment: iovecSegment)
        case .bvec:
            return try consumeSegments(min(maxBytes, count), body, segment: bioVecSegment)
        default:
            let bytes = try walk(maxBytes: maxBytes, holes: holes, body)
            advance(past: bytes, holes: holes)
            return bytes
        }
    }

    /// The address and length of the `index`th segment of an IOVEC or KVEC iterator.
    @inlinable
    func iovecSegment(_ index: Int) -> (UInt, Int) {
        let segment = iovecs[index]
        return (UInt(bitPattern: segment.iov_base), segment.iov_len)
    }

    /// The address and length of the `index`th ``BioVec`` of a BVEC iterator.
    @inlinable
    func bioVecSegment(_ index: Int) -> (UInt, Int) {
        let segment = bioVecs[index]
        return (segment.address, segment.length)
    }

    /// Walks a segment array; returns the bytes taken and where the walk ended: the
    /// segment index and the offset into it.
    @inlinable
    func walkSegments<E: Error>(
        _ limit: Int, _ body: (MemoryRange) throws(E) -> Int, segment: (Int) -> (UInt, Int)
    ) throws(E) -> (bytes: Int, index: Int, offset: Int) {
        var done = 0
        var skip = offset
        var index = 0
        while done < limit, index < segmentCount {
            let (address, length) = segment(index)
            let rest = length &- skip
            let piece = min(rest, limit &- done)
            if piece > 0 {
                let taken = try body(MemoryRange(address: address &+ UInt(skip), length: piece))
                done &+= taken
                if taken < rest {
                    skip &+= taken
                    break
                }
            }
            skip = 0
            index &+= 1
        }
        return (done, index, skip)
    }

    /// ``walkSegments(_:_:segment:)``, then moves to where the walk ended.
    @inlinable
    mutating func consumeSegments<E: Error>(
        _ limit: Int, _ body: (MemoryRange) throws(E) -> Int, segment: (Int) -> (UInt, Int)
    ) throws(E) -> Int {
        guard limit > 0 else { return 0 }
        let end = try walkSegments(limit, body, segment: segment)
        moveToSegment(end.index, offset: end.offset, consumed: end.bytes)
        return end.bytes
    }

    /// Moves a segment iterator to `offset` bytes into segment `index` (counted from
    /// the current one), `consumed` bytes on, dropping finished and empty segments as
    /// ``advance(_:)`` does. For loops over the segment array (``consumeSegments(_:_:segment:)``
    /// and ``ExtractionCursor/move(to:)``), which must pass where their walk really ended.
    @usableFromInline
    mutating func moveToSegment(_ index: Int, offset skip: Int, consumed: Int) {
        var index = index
        var skip = skip
        while index < segmentCount {
            let length = kind == .bvec ? bioVecs[index].length : iovecs[index].iov_len
            if skip < length { break }
            skip -= length
            index += 1
        }
        let stride = kind == .bvec ? MemoryLayout<BioVec>.stride : MemoryLayout<iovec>.stride
        segments = segments.map { $0 + index * stride }
        segmentCount -= index
        offset = skip
        count -= consumed
    }

    /// Walks an XARRAY iterator's folios. `limit` bounds the bytes offered; the
    /// iterator's own range (``count`` bytes of cache positions) bounds the positions
    /// visited, holes included.
    @inlinable
    func walkPageCache<E: Error>(
        _ limit: Int, holes: HolePolicy, _ body: (MemoryRange) throws(E) -> Int
    ) throws(E) -> Int {
        let cache = pageCache
        var position = Int(base) + offset
        let end = position + count
        var entryPosition = cache.firstPosition(endingAfter: position >> pageShift)
        var done = 0
        while done < limit, position < end, entryPosition < cache.entries.count {
            let entry = cache.entries[entryPosition]
            let entryStart = entry.index << pageShift
            if entryStart > position {
                if holes == .stop { break }
                position = entryStart
                if position >= end { break }
            }
            let folioOffset = position - entryStart
            let piece = min(entry.folio.size - folioOffset, limit - done, end - position)
            let taken = try body(MemoryRange(address: entry.folio.address &+ UInt(folioOffset), length: piece))
            done += taken
            position += taken
            if taken < piece { break }
            entryPosition += 1
        }
        return done
    }

    /// Moves past `described` bytes that a ``walk(maxBytes:holes:_:)`` with the same
    /// hole policy offered. For an XARRAY iterator whose walk skipped holes this also
    /// moves past the holes before those bytes, so the next walk starts after them
    /// (the kernel advances by the bytes alone and so revisits the folio after a
    /// hole); for every other case it is ``advance(_:)``.
    public mutating func advance(past described: Int, holes: HolePolicy) {
        guard kind == .xarray, holes == .skip, described > 0 else {
            advance(described)
            return
        }
        let start = Int(base) + offset
        var position = start
        _ = walkPageCache(described, holes: .skip) { range in
            // Each piece starts where its folio's data continues; holes lie before it.
            let cache = pageCache
            let entry = cache.entries[cache.firstPosition(endingAfter: position >> pageShift)]
            position = max(position, entry.index << pageShift) + range.length
            return range.length
        }
        advance(position - start)
    }

    @inlinable
    func walkFolioQueue<E: Error>(
        _ limit: Int, _ body: (MemoryRange) throws(E) -> Int
    ) throws(E) -> Int {
        var segment = folioQueue
        var slot = self.slot
        var skip = offset
        var done = 0
        while done < limit {
            if slot >= segment.slotCount {
                guard let next = segment.next else { break }
                segment = next
                slot = 0
                continue
            }
            let folio = segment[slot]
            let piece = min(folio.size - skip, limit - done)
            if piece > 0 {
                let taken = try body(MemoryRange(address: folio.address &+ UInt(skip), length: piece))
                done += taken
                if taken < piece { break }
            }
            skip = 0
            slot += 1
        }
        return done
    }
}
