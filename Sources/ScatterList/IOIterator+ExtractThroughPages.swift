import IterExtract

/// Extraction to a scatter table in two steps: pages first, then entries built from them.
extension IOIterator {
    /// The two-step path: lists up to `maxPages` pages of the next `maxSize` bytes
    /// with `extractPages(into:maxPages:maxSize:ledger:)` into a freshly allocated
    /// page array, then appends entries built from each batch of pages with the
    /// merging rules of ``ScatterTable/append(pages:offset:size:maxSegment:)``.
    ///
    /// This is how callers built scatter tables before `extract_iter_to_sg` existed
    /// (`iov_iter_get_pages` followed by `sg_alloc_table_from_pages`); it is here so
    /// that it can be measured against ``extract(maxSize:into:maxEntries:granularity:ledger:)``.
    /// It allocates the page array on every call, touches every page twice, and
    /// inherits page extraction's limits: one user or KVEC segment per batch, and
    /// XARRAY stops at the first hole.
    ///
    /// Like the direct path it appends after the table's entries without touching
    /// them, does not move END, advances by exactly the bytes it returns, marks
    /// entries of user-backed iterators as pinned, and leaves no trace on error.
    ///
    /// It keeps the extraction contract of
    /// `IOIterator.extractionLimit(maxSize:capacity:acceptsPipe:)`, with
    /// `maxPages` as its capacity.
    ///
    /// - Throws: ``ScatterListError/iterator(_:)`` for DISCARD and PIPE, a pin limit or
    ///   a wrapping user range; ``ScatterListError/maxSegmentBelowPage(_:)``.
    @discardableResult
    public mutating func extractThroughPages(
        maxSize: Int, into table: ScatterTable, maxPages: Int,
        maxSegment: Int = ScatterTable.unlimitedSegment, ledger: PinLedger = .shared
    ) throws(ScatterListError) -> Int {
        let limit: Int
        do {
            limit = try extractionLimit(maxSize: maxSize, capacity: maxPages, acceptsPipe: false)
        } catch {
            throw .iterator(error)
        }
        if limit == 0 { return 0 }
        let segment = try pageMultipleMaxSegment(maxSegment)
        var pages: [Page] = []
        // Room for a call of whole pages; many small segments may take more, and the array grows.
        pages.reserveCapacity(Swift.min(maxPages, limit / pageSize + 2))
        let start = table.count
        var working = self
        var bytes = 0
        while bytes < limit, pages.count < maxPages {
            let batchStart = pages.count
            let batch: PageExtraction
            do {
                batch = try working.extractPages(
                    into: &pages, maxPages: maxPages - batchStart, maxSize: limit - bytes, ledger: ledger)
            } catch {
                release(extractedPages: pages, ledger: ledger)
                table.removeEntries(from: start)
                throw .iterator(error)
            }
            if batch.byteCount == 0 { break }
            table.appendRun(of: pages[batchStart...], offset: batch.firstPageOffset, size: batch.byteCount,
                            maxSegment: segment, growingLast: table.count > start, pinned: extractionWillPin)
            bytes += batch.byteCount
        }
        self = working
        return bytes
    }
}
