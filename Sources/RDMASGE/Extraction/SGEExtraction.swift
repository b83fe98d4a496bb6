import IterExtract

/// One round of extraction to SGEs, shared by the array and the buffer entry points of
/// `IOIterator.extract`: the builder describes the memory under an ``ExtractionCursor``
/// (the iterator, lent by `IOIterator.withExtractionCursor(_:)` and put back where it
/// was unless the SGEs are kept and their pages pinned).
extension SGEBuilder {
    /// Describes up to `limit` bytes from `cursor` into `output`, stopping at the
    /// limit, the end, the most SGEs, or a full output (then ``needsRoom`` is set and
    /// the open SGE stays open for the next output). Returns the bytes described, with
    /// the region references of every SGE opened taken (``settleReferences()``).
    /// One dispatcher, one helper per kind.
    @inlinable
    mutating func fill(_ output: inout OutputSpan<SGE>, from cursor: inout ExtractionCursor, limit: Int) throws(RDMAError) -> Int {
        needsRoom = false
        let bytes: Int
        switch cursor.kind {
        case .iovec, .kvec:
            bytes = try appendIOVecs(from: &cursor, limit: limit, to: &output)
        case .bvec:
            bytes = try appendBioVecs(from: &cursor, limit: limit, to: &output)
        case .ubuf, .xarray, .folioq:
            bytes = try appendPieces(from: &cursor, limit: limit, to: &output)
        case .pipe, .discard:
            preconditionFailure("extractionLimit refuses PIPE and DISCARD")
        }
        if !needsRoom { close(into: &output) }
        settleReferences()
        return bytes
    }

    /// IOVEC (pinned by the caller), KVEC (no pins): the `iovec` array, in one loop.
    @inlinable
    mutating func appendIOVecs(from cursor: inout ExtractionCursor, limit: Int, to output: inout OutputSpan<SGE>) throws(RDMAError) -> Int {
        let end = try appendSegments(cursor.remainingIOVecs, offset: cursor.segmentOffset, limit: limit, to: &output)
        cursor.move(to: end)
        return end.bytes
    }

    /// BVEC: the ``BioVec`` array, in one loop; no pins.
    @inlinable
    mutating func appendBioVecs(from cursor: inout ExtractionCursor, limit: Int, to output: inout OutputSpan<SGE>) throws(RDMAError) -> Int {
        let end = try appendSegments(cursor.remainingBioVecs, offset: cursor.segmentOffset, limit: limit, to: &output)
        cursor.move(to: end)
        return end.bytes
    }

    /// UBUF (pinned by the caller), XARRAY (stopping at a hole), FOLIOQ (no pins):
    /// piece by piece.
    @inlinable
    mutating func appendPieces(from cursor: inout ExtractionCursor, limit: Int, to output: inout OutputSpan<SGE>) throws(RDMAError) -> Int {
        try cursor.consume(maxBytes: limit, holes: .stop) { (range) throws(RDMAError) -> Int in
            if appendInsideRegion(range, to: &output) { return range.length }
            return try append(range, to: &output)
        }
    }

    /// Gives back the region references of the SGEs `written` and the open one, first
    /// taking those not yet taken: the extraction failed.
    @inlinable
    mutating func releaseReferences<C: Collection<SGE>>(written: C) {
        settleReferences()
        keys.releaseReferences(of: written)
        if isOpen, countsReferences { keys.release(lkey: openKey) }
    }
}
