import IterExtract

extension SGEBuilder {
    /// Describes up to `limit` bytes of a segment array (IOVEC, KVEC, BVEC), starting
    /// `offset` bytes into its first segment, exactly as ``append(_:to:)`` would piece
    /// by piece, and returns where it stopped: the bytes taken, the segment and the
    /// offset into it.
    ///
    /// This is the loop the kernel writes by hand over an `iovec` array. Runs of
    /// segments that the remembered region covers go through
    /// ``appendInPlace(_:at:limit:into:initialized:)``, straight into the output's
    /// memory; a segment it cannot take goes through ``append(_:to:)``, which asks a
    /// batching resolver to cover the segments that follow as well when their pages
    /// touch (``lookahead(_:after:from:to:budget:)``), so that an MR cache registers one
    /// region for them on a miss rather than one per segment. No segment wraps the
    /// address space: making the iterator checked that.
    @inlinable @inline(__always)
    mutating func appendSegments<Segment: SegmentElement>(
        _ segments: UnsafeBufferPointer<Segment>, offset: Int, limit: Int,
        to output: inout OutputSpan<SGE>
    ) throws(RDMAError) -> SegmentPosition {
        var position = SegmentPosition(bytes: 0, index: 0, offset: offset)
        while true {
            output.withUnsafeMutableBufferPointer { buffer, initialized in
                appendInPlace(segments, at: &position, limit: limit, into: buffer, initialized: &initialized)
            }
            guard position.bytes < limit, position.index < segments.count else { break }
            // A piece the loop in place cannot take: another region, no room, or no region yet.
            let segment = segments[position.index].segmentRange
            let rest = segment.length &- position.offset
            let piece = Swift.min(rest, limit &- position.bytes)
            let address = segment.address &+ UInt(position.offset)
            // Holds since the iterator was made; stating it lets the compiler shorten `append`.
            precondition(!address.addingReportingOverflow(UInt(piece)).overflow, "a segment wraps the address space")
            let covered = address >= coverageStart && address &+ UInt(piece) <= coverageEnd
            lookaheadEnd = countsReferences && reusesResolutions && !covered
                ? Self.lookahead(segments, after: position.index, from: address, to: address &+ UInt(piece),
                                 budget: limit &- position.bytes &- piece)
                : 0
            let taken = try append(MemoryRange(address: address, length: piece), to: &output)
            position.bytes &+= taken
            if taken < rest {
                position.offset &+= taken
                break
            }
            position.offset = 0
            position.index &+= 1
        }
        return position
    }

    /// The most segments ``lookahead(_:after:from:to:budget:)`` looks at: a lookup then
    /// serves at least this many pieces, and a failed one wastes at most this much scanning.
    @inlinable static var lookaheadSegments: Int { 256 }

    /// The end of the run of memory that the segments after `index` extend `start..<end`
    /// to, for as long as each starts at or after `start` and its first page touches or
    /// overlaps the run's last page (so the run's pages are exactly the pages its pieces
    /// occupy: no page between them that no piece touches), within `budget` more bytes
    /// and ``lookaheadSegments`` segments.
    @inlinable
    static func lookahead<Segment: SegmentElement>(
        _ segments: UnsafeBufferPointer<Segment>, after index: Int, from start: UInt, to end: UInt, budget: Int
    ) -> UInt {
        var end = end
        var budget = budget
        var next = index &+ 1
        let last = Swift.min(segments.count, next &+ lookaheadSegments)
        while next < last, budget > 0 {
            let range = segments[next].segmentRange
            next &+= 1
            if range.length == 0 { continue }
            guard range.address >= start, range.address &>> pageShift <= ((end &- 1) &>> pageShift) &+ 1 else { break }
            let length = Swift.min(range.length, budget)
            end = Swift.max(end, range.address &+ UInt(length))
            budget &-= length
        }
        return end
    }

    /// Takes segments from `position` on for as long as each lies inside the
    /// remembered region and either grows the open SGE or opens one for which there is
    /// room (the resolver counting nothing, or batching). Writes closed SGEs straight into
    /// `buffer`, whose first `initialized` elements are set, keeping the loop's state
    /// in registers: per segment a handful of compares and, when an SGE closes, one
    /// store. Leaves `position` at the first piece it did not take (empty segments
    /// are skipped) and the last SGE open in the builder, as ``append(_:to:)`` expects.
    ///
    /// One call takes at most `UInt32.max` bytes, so that no piece it takes is too
    /// long for one SGE; ``appendSegments(_:offset:limit:to:)``
    /// goes on from there. An empty segment anywhere but at the open SGE's end is
    /// skipped by the same path when it lies outside the region (an `iovec` of
    /// `NULL, 0`), so the loop tests for emptiness only where an SGE would open.
    @inlinable @inline(__always)
    mutating func appendInPlace<Segment: SegmentElement>(
        _ segments: UnsafeBufferPointer<Segment>, at position: inout SegmentPosition, limit: Int,
        into buffer: UnsafeMutableBufferPointer<SGE>, initialized: inout Int
    ) {
        guard reusesResolutions, position.index < segments.count, position.bytes < limit else { return }
        let maxLength = UInt(UInt32.max)
        let lkey = self.lkey
        let coverageStart = self.coverageStart
        let coverageEnd = self.coverageEnd
        let budget = Swift.min(limit &- position.bytes, Int(UInt32.max))
        var remaining = budget
        // Every SGE opened closes the one before, which then takes a slot in the buffer;
        // `opensLeft` counts the SGEs that may still open (maxSGEs bounds it too).
        var opensLeft = Swift.min(maxSGEs &- opened, buffer.count &- initialized &+ (isOpen ? 0 : 1))
        // Segments are walked with a negative byte offset that counts up to the end, so
        // that stepping and testing for the end is one addition.
        let end = UnsafeRawPointer(segments.baseAddress! + segments.count)
        let stride = MemoryLayout<Segment>.stride
        var offset = (position.index &- segments.count) &* stride
        func segment(at offset: Int) -> Segment { (end + offset).assumingMemoryBound(to: Segment.self).pointee }
        var piece = segment(at: offset).segmentRange
        piece.address &+= UInt(position.offset)
        piece.length &-= position.offset
        if !isOpen {
            // Open the first SGE here, so that the loop below always has one open.
            while piece.length == 0 {
                offset &+= stride
                guard offset < 0 else {
                    position.index = segments.count
                    position.offset = 0
                    return
                }
                piece = segment(at: offset).segmentRange
            }
            let length = Swift.min(piece.length, remaining)
            let last = piece.address &+ UInt(length)
            guard opensLeft > 0, last >= piece.address, piece.address >= coverageStart, last <= coverageEnd else {
                position.index = segments.count &+ offset / stride
                position.offset = Int(piece.address &- segment(at: offset).segmentAddress)
                return
            }
            opensLeft &-= 1
            opened &+= 1
            isOpen = true
            openAddress = piece.address
            openLength = 0
            openKey = lkey
        }
        guard openKey == lkey else { return }
        let first = buffer.baseAddress! + initialized
        var out = first
        let outEnd = first + opensLeft
        var openStart = openAddress
        var openEnd = openAddress &+ UInt(openLength)
        // The closed SGEs' pages, less one each: the last page's number less the first's.
        var pageSpans = 0
        while true {
            let length = Swift.min(piece.length, remaining)
            let last = piece.address &+ UInt(bitPattern: length)
            guard last >= piece.address, piece.address >= coverageStart, last <= coverageEnd else { break }
            if piece.address == openEnd {
                // Filling an SGE to its limit and carrying on is for the general path.
                guard last &- openStart <= maxLength else { break }
                openEnd = last
            } else if length > 0 {
                guard out < outEnd else { break }
                out.initialize(to: SGE(address: UInt64(openStart), length: UInt32(truncatingIfNeeded: openEnd &- openStart), lkey: lkey))
                out += 1
                pageSpans &+= Int(bitPattern: (openEnd &- 1) &>> pageShift) &- Int(bitPattern: openStart &>> pageShift)
                openStart = piece.address
                openEnd = last
            }
            remaining &-= length
            if remaining == 0 {
                // The limit ends the walk, inside this segment or at its end.
                piece.address = last
                break
            }
            offset &+= stride
            guard offset < 0 else { break }
            piece = segment(at: offset).segmentRange
        }
        let closed = out - first
        position.bytes &+= budget &- remaining
        position.index = segments.count &+ offset / stride
        position.offset = offset < 0 ? Int(piece.address &- segment(at: offset).segmentAddress) : 0
        opened &+= closed
        openAddress = openStart
        openLength = Int(openEnd &- openStart)
        pageCount &+= pageSpans &+ closed
        initialized &+= closed
    }
}
