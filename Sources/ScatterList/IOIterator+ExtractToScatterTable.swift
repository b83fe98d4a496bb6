import IterExtract

/// Extraction to a scatter table: an iterator's memory described as scatter entries.
extension IOIterator {
    /// Describes up to `maxSize` bytes of the iterator in at most `maxEntries` new
    /// entries appended to `table`, and advances past the bytes described.
    ///
    /// Entries already in the table are never read or changed, and END is not moved
    /// (call ``ScatterTable/markEnd()`` when done). Keeps the extraction contract
    /// stated on `IOIterator.extractionLimit(maxSize:capacity:acceptsPipe:)`:
    /// returns the bytes described and the iterator advances by exactly that many;
    /// `maxSize` is clamped to `count` and `maxReadWriteCount`; when it or
    /// `maxEntries` is 0 the call adds nothing and returns 0 (DISCARD and PIPE are
    /// refused first); the call stops early, without error, when `maxEntries`
    /// entries were added.
    ///
    /// With ``ScatterGranularity/kernel`` granularity, per kind:
    /// - UBUF, IOVEC: one entry per page, across segments; every page is **pinned**
    ///   in `ledger` and its entry marked ``ScatterEntry/isPinned`` (give the pins back
    ///   with ``ScatterTable/releasePins(ledger:)``).
    /// - KVEC: one entry per page, across segments, each as long as its part of the
    ///   page; no retention.
    /// - BVEC: one entry per element (it may span pages); no retention.
    /// - FOLIOQ, XARRAY: one entry per folio; XARRAY skips holes and continues at the
    ///   start of the next folio; no retention.
    ///
    /// An entry's offset is normalised to the page that holds its first byte. When
    /// the table is full, a chunk is added; with `maxEntries` within the table's free
    /// capacity the call does not allocate.
    ///
    /// Mirrors the kernel's `extract_iter_to_sg`. Unlike the kernel, a failing call
    /// leaves no trace.
    ///
    /// - Throws: on error the iterator, the table and the ledger are unchanged:
    ///   ``ScatterListError/iterator(_:)`` wrapping
    ///   `IOIteratorError.notExtractable(_:)` for DISCARD and PIPE,
    ///   `IOIteratorError.pipeIsDestinationOnly` for a PIPE source, or
    ///   `IOIteratorError.pinLimitExceeded(requested:available:)`;
    ///   ``ScatterListError/maxSegmentBelowPage(_:)`` for a merged granularity below a page.
    @discardableResult
    public mutating func extract(
        maxSize: Int, into table: ScatterTable, maxEntries: Int,
        granularity: ScatterGranularity = .kernel, ledger: PinLedger = .shared
    ) throws(ScatterListError) -> Int {
        let limit: Int
        do {
            limit = try extractionLimit(maxSize: maxSize, capacity: maxEntries, acceptsPipe: false)
        } catch {
            throw .iterator(error)
        }
        if limit == 0 { return 0 }
        var maxSegment: Int?
        if case .merged(let size) = granularity { maxSegment = try pageMultipleMaxSegment(size) }
        let start = table.count
        let builder = ScatterEntryBuilder(
            table: table, firstEntry: start, endEntry: start + Swift.min(maxEntries, Int.max - start), maxSegment: maxSegment,
            translatesAddresses: kind == .ubuf || kind == .iovec || kind == .kvec, pins: extractionWillPin)
        // The iterator moves only when the extraction succeeded.
        return try withExtractionCursor { (cursor) throws(ScatterListError) -> Int in
            let bytes: Int
            do throws(ScatterListError) {
                switch cursor.kind {
                case .ubuf:
                    bytes = builder.addUserBuffer(&cursor, limit: limit)
                case .iovec, .kvec:
                    bytes = builder.addIOVecs(&cursor, limit: limit)
                case .bvec:
                    bytes = builder.addBioVecs(&cursor, limit: limit)
                case .xarray, .folioq:
                    bytes = builder.addFolios(&cursor, limit: limit)
                case .pipe, .discard:
                    preconditionFailure("extractionLimit refuses \(cursor.kind)")
                }
                if builder.pins { try table.pinEntries(from: start, ledger: ledger) }
            } catch {
                table.removeEntries(from: start)
                throw error
            }
            return bytes
        }
    }
}

/// One helper per kind, each moving the cursor past the bytes it added.
extension ScatterEntryBuilder {
    /// IOVEC, KVEC: the segment array; an IOVEC's pages are pinned by the caller
    /// (``pins``), a KVEC's are not retained.
    fileprivate func addIOVecs(_ cursor: inout ExtractionCursor, limit: Int) -> Int {
        let end = addSegments(cursor.remainingIOVecs, offset: cursor.segmentOffset, limit: limit)
        cursor.move(to: end)
        return end.bytes
    }

    /// BVEC: the segment array, one entry per element at kernel granularity; no retention.
    fileprivate func addBioVecs(_ cursor: inout ExtractionCursor, limit: Int) -> Int {
        let end = addSegments(cursor.remainingBioVecs, offset: cursor.segmentOffset, limit: limit)
        cursor.move(to: end)
        return end.bytes
    }

    /// UBUF: page by page; the pages are pinned by the caller (``pins``).
    fileprivate func addUserBuffer(_ cursor: inout ExtractionCursor, limit: Int) -> Int {
        cursor.consume(maxBytes: limit, addPages)
    }

    /// XARRAY, FOLIOQ: folio by folio (whole at kernel granularity), skipping an
    /// XARRAY's holes; no retention.
    fileprivate func addFolios(_ cursor: inout ExtractionCursor, limit: Int) -> Int {
        if maxSegment == nil { return cursor.consume(maxBytes: limit, holes: .skip, addWhole) }
        return cursor.consume(maxBytes: limit, holes: .skip, addPages)
    }
}
