import IterExtract

extension ScatterEntryBuilder {
    /// Adds up to `limit` bytes of a segment array (IOVEC, KVEC, BVEC), starting
    /// `offset` bytes into its first segment, with exactly the entries the walk through
    /// ``addWhole(_:)`` and ``addPages(of:)`` would make, and returns where it stopped:
    /// the bytes taken, the segment and the offset into it.
    ///
    /// Memory that is its own frames (always for BVEC; for IOVEC and KVEC whenever no
    /// ``VirtualMapping`` shows memory in the segment) is added here, writing entries
    /// straight into the table's current chunk with the append cursor in local
    /// variables; the rest (a mapped segment, a full chunk) goes through the table's
    /// general path, with the cursor written back around it. No segment wraps the
    /// address space: making the iterator checked that.
    func addSegments<Segment: SegmentElement>(
        _ segments: UnsafeBufferPointer<Segment>, offset: Int, limit: Int,
    ) -> SegmentPosition {
        precondition(!table.isMapped, "a mapped table cannot grow; unmap it first")
        if maxSegment != nil {
            return addSegments(segments, offset: offset, limit: limit, shape: MergedEntries.self)
        } else if translatesAddresses {
            return addSegments(segments, offset: offset, limit: limit, shape: PageEntries.self)
        }
        return addSegments(segments, offset: offset, limit: limit, shape: WholeEntries.self)
    }

    /// The loop of ``addSegments(_:offset:limit:)``, compiled once per shape of
    /// entry, so that it tests no granularity flag per segment. Kept out of line: when
    /// the optimizer inlined the merged BVEC loop into the caller, it ran about 8%
    /// more instructions per call (Benchmarks/Instructions, BVEC-256 sg-merged), and
    /// the out-of-line IOVEC merged loop runs about 4% fewer.
    @inline(never)
    private func addSegments<Segment: SegmentElement, Shape: EntryShape>(
        _ segments: UnsafeBufferPointer<Segment>, offset: Int, limit: Int,
        shape: Shape.Type
    ) -> SegmentPosition {
        let state = table.state
        let entryLimit = maxSegment ?? .max
        let pinMark = pins
        var cursor = state.pointee
        var done = 0
        var index = 0
        var skip = offset
        while done < limit, index < segments.count {
            if !Shape.splitsAtPages, cursor.room > 0 {
                addInChunk(segments, done: &done, index: &index, skip: &skip, limit: limit, cursor: &cursor,
                           shape: Shape.self)
                guard done < limit, index < segments.count else { break }
            }
            let segment = segments[index].segmentRange
            let rest = segment.length &- skip
            let piece = Swift.min(rest, limit &- done)
            if piece > 0 {
                var address = segment.address &+ UInt(bitPattern: skip)
                // Cannot overflow (making the iterator checked every segment); the checked
                // addition tells the compiler so, which keeps the per-page loop below short.
                let end = address + UInt(bitPattern: piece)
                var left = piece
                if !translatesAddresses || AddressTranslation.isDirect(from: address, to: end) {
                    if Shape.merges, cursor.count > firstEntry, let last = cursor.last,
                       last.pointee.address &+ UInt(bitPattern: last.pointee.length) == address,
                       last.pointee.length < entryLimit {
                        let grow = Swift.min(left, entryLimit &- last.pointee.length)
                        last.pointee.length &+= grow
                        address &+= UInt(bitPattern: grow)
                        left &-= grow
                    }
                    while left > 0, cursor.count < endEntry {
                        let pageOffset = Int(bitPattern: address & pageMask)
                        let length = Shape.splitsAtPages ? Swift.min(left, pageSize &- pageOffset)
                            : Shape.merges ? Swift.min(left, entryLimit) : left
                        let page = Page(frame: address >> UInt(pageShift))
                        if cursor.room > 0, let slot = cursor.slot {
                            slot.pointee = ScatterEntry(page: page, offset: pageOffset, length: length, isPinned: pinMark)
                            if pinMark { cursor.pinnedCount &+= 1 }
                            cursor.last = slot
                            cursor.slot = slot + 1
                            cursor.room &-= 1
                            cursor.count &+= 1
                        } else {
                            // The chunk is full: the table adds or moves to the next one.
                            state.pointee = cursor
                            table.appendEntry(page: page, offset: pageOffset, length: length, pinned: pinMark)
                            cursor = state.pointee
                        }
                        address &+= UInt(bitPattern: length)
                        left &-= length
                    }
                } else {
                    state.pointee = cursor
                    left &-= addPages(of: MemoryRange(address: address, length: left))
                    cursor = state.pointee
                }
                let taken = piece &- left
                done &+= taken
                if taken < rest {
                    skip &+= taken
                    break
                }
            }
            skip = 0
            index &+= 1
        }
        state.pointee = cursor
        return SegmentPosition(bytes: done, index: index, offset: skip)
    }

    /// Takes pieces for as long as each makes one entry in the current chunk or grows
    /// the last entry of this call (BVEC elements, and merged runs of memory that is
    /// its own frames), with every variable in a register and one store per entry;
    /// stops at the first piece that needs more (a mapped range, a piece longer than
    /// an entry may be, a full chunk, the entry budget) and leaves the position there.
    @inline(__always)
    private func addInChunk<Segment: SegmentElement, Shape: EntryShape>(
        _ segments: UnsafeBufferPointer<Segment>, done: inout Int, index: inout Int, skip: inout Int, limit: Int,
        cursor: inout ScatterTable.AppendState, shape: Shape.Type
    ) {
        guard let first = cursor.slot else { return }
        let entryLimit = maxSegment ?? .max
        let pinMark = pins
        var slot = first
        var slotsLeft = Swift.min(cursor.room, endEntry &- cursor.count)
        // The entry a piece may grow, and where it ends. With none, the end is one no
        // piece can start at (a piece there would wrap, which stops the loop first).
        var last = first
        var lastEnd = UInt.max
        var lastLength = 0
        if cursor.count > firstEntry, let entry = cursor.last {
            last = entry
            lastEnd = entry.pointee.address &+ UInt(bitPattern: entry.pointee.length)
            lastLength = entry.pointee.length
        }
        let base = segments.baseAddress!
        let end = base + segments.count
        var next = base + index
        var remaining = limit &- done
        var piece = next.pointee.segmentRange
        piece.address &+= UInt(bitPattern: skip)
        piece.length &-= skip
        while true {
            let length = Swift.min(piece.length, remaining)
            if length > 0 {
                let address = piece.address
                let stop = address &+ UInt(bitPattern: length)
                guard stop >= address, !translatesAddresses || AddressTranslation.isDirect(from: address, to: stop) else { break }
                if Shape.merges, address == lastEnd, lastLength &+ length <= entryLimit {
                    lastLength &+= length
                    last.pointee.length = lastLength
                } else {
                    guard slotsLeft > 0, length <= entryLimit else { break }
                    slot.pointee = ScatterEntry(page: Page(frame: address &>> UInt(pageShift)),
                                                offset: Int(bitPattern: address & pageMask), length: length, isPinned: pinMark)
                    last = slot
                    lastLength = length
                    slot += 1
                    slotsLeft &-= 1
                }
                lastEnd = stop
                remaining &-= length
                if remaining == 0 {
                    piece.address = stop
                    break
                }
            }
            next += 1
            guard next < end else { break }
            piece = next.pointee.segmentRange
        }
        let added = slot - first
        if added > 0 {
            cursor.slot = slot
            cursor.room &-= added
            cursor.count &+= added
            cursor.last = slot - 1
            if pinMark { cursor.pinnedCount &+= added }
        }
        done = limit &- remaining
        index = next - base
        skip = next < end ? Int(bitPattern: piece.address &- next.pointee.segmentAddress) : 0
    }
}

/// How a piece of memory that is its own frames becomes entries.
protocol EntryShape {
    /// One entry per page (kernel granularity over virtual memory).
    static var splitsAtPages: Bool { get }
    /// Entries of up to the max segment, the first continuing the last (merged granularity).
    static var merges: Bool { get }
}

/// Kernel granularity for UBUF, IOVEC and KVEC: one entry per page.
private enum PageEntries: EntryShape {
    static var splitsAtPages: Bool { true }
    static var merges: Bool { false }
}

/// Kernel granularity for BVEC: one entry per element.
private enum WholeEntries: EntryShape {
    static var splitsAtPages: Bool { false }
    static var merges: Bool { false }
}

/// Merged granularity.
private enum MergedEntries: EntryShape {
    static var splitsAtPages: Bool { false }
    static var merges: Bool { true }
}
