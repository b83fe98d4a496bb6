import IterExtract

/// One extraction to SGEs under way: the cursor over a working copy of the iterator,
/// the builder of SGEs, and the bytes described so far. The array and the buffer
/// entry points of `IOIterator.extract` both drive it; the caller commits the cursor
/// once the SGEs are kept and their pages pinned.
@usableFromInline
struct SGEExtraction<Keys: KeyResolver> {
    @usableFromInline var cursor: ExtractionCursor
    @usableFromInline var builder: SGEBuilder<Keys>
    /// The most bytes to describe.
    @usableFromInline let limit: Int
    /// The bytes described so far.
    @usableFromInline var bytes = 0

    @inlinable
    init(_ iterator: IOIterator, keys: Keys, maxSGEs: Int, limit: Int) {
        cursor = ExtractionCursor(iterator)
        builder = SGEBuilder(keys: keys, access: iterator.direction == .destination ? .localWrite : [], maxSGEs: maxSGEs)
        self.limit = limit
    }

    /// Describes the iterator's memory into `output` until the limit, the end, the
    /// most SGEs, or a full output (then ``SGEBuilder/needsRoom`` is set and the open
    /// SGE stays open for the next output). One dispatcher, one helper per kind.
    @inlinable
    mutating func fill(_ output: inout OutputSpan<SGE>) throws(RDMAError) {
        builder.needsRoom = false
        switch cursor.kind {
        case .iovec, .kvec:
            try appendIOVecs(to: &output)
        case .bvec:
            try appendBioVecs(to: &output)
        case .ubuf, .xarray, .folioq:
            try appendPieces(to: &output)
        case .pipe, .discard:
            preconditionFailure("extractionLimit refuses \(cursor.kind)")
        }
        if !builder.needsRoom { builder.close(into: &output) }
    }

    /// IOVEC (pinned by the caller), KVEC (no pins): the `iovec` array, in one loop.
    @inlinable
    mutating func appendIOVecs(to output: inout OutputSpan<SGE>) throws(RDMAError) {
        let end = try builder.appendSegments(cursor.remainingIOVecs, offset: cursor.segmentOffset,
                                             limit: limit - bytes, to: &output)
        cursor.move(to: end)
        bytes += end.bytes
    }

    /// BVEC: the ``BioVec`` array, in one loop; no pins.
    @inlinable
    mutating func appendBioVecs(to output: inout OutputSpan<SGE>) throws(RDMAError) {
        let end = try builder.appendSegments(cursor.remainingBioVecs, offset: cursor.segmentOffset,
                                             limit: limit - bytes, to: &output)
        cursor.move(to: end)
        bytes += end.bytes
    }

    /// UBUF (pinned by the caller), XARRAY (stopping at a hole), FOLIOQ (no pins):
    /// piece by piece.
    @inlinable
    mutating func appendPieces(to output: inout OutputSpan<SGE>) throws(RDMAError) {
        // The walk moves a local cursor while the closure grows the builder.
        var cursor = self.cursor
        defer { self.cursor = cursor }
        let taken = try cursor.consume(maxBytes: limit - bytes, holes: .stop) { (range) throws(RDMAError) -> Int in
            if builder.appendInsideRegion(range, to: &output) { return range.length }
            return try builder.append(range, to: &output)
        }
        bytes += taken
    }

    /// Gives back the region references taken for the SGEs `written` and the open one:
    /// the extraction failed.
    @inlinable
    func releaseReferences<C: Collection<SGE>>(written: C) {
        for sge in written { builder.keys.release(lkey: sge.lkey) }
        if builder.isOpen { builder.keys.release(lkey: builder.openKey) }
    }
}
