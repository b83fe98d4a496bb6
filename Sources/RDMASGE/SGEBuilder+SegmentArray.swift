import IterExtract

extension SGEBuilder {
    /// Describes up to `limit` bytes of a segment array (IOVEC, KVEC, BVEC), starting
    /// `offset` bytes into its first segment, exactly as ``append(_:to:)`` would piece
    /// by piece, and returns where it stopped: the bytes taken, the segment and the
    /// offset into it.
    ///
    /// This is the loop the kernel writes by hand over an `iovec` array. Runs of
    /// segments that the remembered region covers go through
    /// ``appendInPlace(_:at:limit:into:initialized:range:)``, straight into the output's
    /// memory; a segment it cannot take goes through ``append(_:to:)``.
    /// `checksOverflow` refuses a range that wraps the address space (user memory,
    /// whose ranges the caller chose).
    @inlinable
    mutating func appendSegments<Segment>(
        _ segments: UnsafeBufferPointer<Segment>, offset: Int, limit: Int, checksOverflow: Bool,
        to output: inout OutputSpan<SGE>, range: (Segment) -> (address: UInt, length: Int)
    ) throws(RDMAError) -> (bytes: Int, index: Int, offset: Int) {
        var position = SegmentPosition(bytes: 0, index: 0, offset: offset)
        while true {
            output.withUnsafeMutableBufferPointer { buffer, initialized in
                appendInPlace(segments, at: &position, limit: limit, into: buffer, initialized: &initialized, range: range)
            }
            guard position.bytes < limit, position.index < segments.count else { break }
            // A piece the loop in place cannot take: another region, no room, or no region yet.
            let segment = range(segments[position.index])
            let rest = segment.length &- position.offset
            let piece = Swift.min(rest, limit &- position.bytes)
            let address = segment.address &+ UInt(position.offset)
            if checksOverflow, address.addingReportingOverflow(UInt(piece)).overflow {
                throw .addressOverflow(address: address, length: piece)
            }
            let taken = try append(MemoryRange(address: address, length: piece), to: &output)
            position.bytes &+= taken
            if taken < rest {
                position.offset &+= taken
                break
            }
            position.offset = 0
            position.index &+= 1
        }
        return (position.bytes, position.index, position.offset)
    }

    /// Takes segments from `position` on for as long as each lies inside the
    /// remembered region and either grows the open SGE or opens one for which there is
    /// room (the resolver counting nothing). Writes closed SGEs straight into
    /// `buffer`, whose first `initialized` elements are set, keeping the loop's state
    /// in registers: per segment a handful of compares and, when an SGE closes, one
    /// store. Leaves `position` at the first piece it did not take (empty segments
    /// are skipped) and the last SGE open in the builder, as ``append(_:to:)`` expects.
    @inlinable
    mutating func appendInPlace<Segment>(
        _ segments: UnsafeBufferPointer<Segment>, at position: inout SegmentPosition, limit: Int,
        into buffer: UnsafeMutableBufferPointer<SGE>, initialized: inout Int, range: (Segment) -> (address: UInt, length: Int)
    ) {
        guard reusesResolutions, position.index < segments.count, position.bytes < limit else { return }
        let maxLength = UInt(UInt32.max)
        let lkey = self.lkey
        let coverageStart = self.coverageStart
        let coverageEnd = self.coverageEnd
        // Every SGE opened closes the one before, which then takes a slot in the buffer;
        // `opensLeft` counts the SGEs that may still open (maxSGEs bounds it too).
        var opensLeft = Swift.min(maxSGEs &- opened, buffer.count &- initialized &+ (isOpen ? 0 : 1))
        var next = segments.baseAddress! + position.index
        let end = segments.baseAddress! + segments.count
        var remaining = limit &- position.bytes
        var piece = range(next.pointee)
        piece.address &+= UInt(position.offset)
        piece.length &-= position.offset
        if !isOpen {
            // Open the first SGE here, so that the loop below always has one open.
            while piece.length == 0 {
                next += 1
                guard next < end else {
                    position.index = segments.count
                    position.offset = 0
                    return
                }
                piece = range(next.pointee)
            }
            let length = Swift.min(piece.length, remaining)
            let last = piece.address &+ UInt(length)
            guard opensLeft > 0, last >= piece.address, piece.address >= coverageStart, last <= coverageEnd,
                  UInt(length) <= maxLength else {
                position.index = next - segments.baseAddress!
                position.offset = Int(piece.address &- range(next.pointee).address)
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
        var out = buffer.baseAddress! + initialized
        var openStart = openAddress
        var openEnd = openAddress &+ UInt(openLength)
        var pages = 0
        let opensAvailable = opensLeft
        while true {
            let length = Swift.min(piece.length, remaining)
            if length > 0 {
                let last = piece.address &+ UInt(length)
                guard last >= piece.address, piece.address >= coverageStart, last <= coverageEnd else { break }
                if piece.address == openEnd {
                    // Filling an SGE to its limit and carrying on is for the general path.
                    guard last &- openStart <= maxLength else { break }
                    openEnd = last
                } else {
                    guard opensLeft > 0, UInt(length) <= maxLength else { break }
                    let sge = SGE(address: UInt64(openStart), length: UInt32(truncatingIfNeeded: openEnd &- openStart), lkey: lkey)
                    out.initialize(to: sge)
                    out += 1
                    pages &+= sge.pageCount
                    opensLeft &-= 1
                    openStart = piece.address
                    openEnd = last
                }
                remaining &-= length
                if remaining == 0 {
                    // The limit ends the walk, inside this segment or at its end.
                    piece.address = last
                    break
                }
            }
            next += 1
            guard next < end else { break }
            piece = range(next.pointee)
        }
        position.bytes = limit &- remaining
        position.index = next - segments.baseAddress!
        position.offset = next < end ? Int(piece.address &- range(next.pointee).address) : 0
        opened &+= opensAvailable &- opensLeft
        openAddress = openStart
        openLength = Int(openEnd &- openStart)
        pageCount &+= pages
        initialized = out - buffer.baseAddress!
    }
}

/// Where a walk over a segment array is: the bytes taken, the segment, and the offset into it.
@usableFromInline
struct SegmentPosition {
    @usableFromInline var bytes: Int
    @usableFromInline var index: Int
    @usableFromInline var offset: Int

    @inlinable
    init(bytes: Int, index: Int, offset: Int) {
        self.bytes = bytes
        self.index = index
        self.offset = offset
    }
}
