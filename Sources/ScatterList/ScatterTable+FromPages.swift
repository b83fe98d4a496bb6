import IterExtract

/// Rounds a max segment size down to a page multiple, as the kernel's scatterlist
/// builders do.
///
/// - Throws: ``ScatterListError/maxSegmentBelowPage(_:)`` when less than a page remains.
func pageMultipleMaxSegment(_ maxSegment: Int) throws(ScatterListError) -> Int {
    let rounded = maxSegment & ~(pageSize - 1)
    guard rounded >= pageSize else { throw .maxSegmentBelowPage(maxSegment) }
    return rounded
}

extension ScatterTable {
    /// The max segment size the kernel uses when none is given (`UINT_MAX`, rounded
    /// down to a page multiple when used).
    public static let unlimitedSegment = Int(UInt32.max)

    /// A table describing `size` bytes that start `offset` bytes into the first of
    /// `pages`, merging pages whose frames are consecutive into entries of at most
    /// `maxSegment` bytes, with END on the last entry.
    /// Mirrors the kernel's `sg_alloc_table_from_pages_segment`.
    ///
    /// `offset` must lie in the first page and `size` within what the pages hold
    /// after it; anything else describes memory the caller did not give, a programmer
    /// error that traps.
    ///
    /// - Throws: ``ScatterListError/maxSegmentBelowPage(_:)``.
    public convenience init<Pages: Collection<Page>>(
        pages: Pages, offset: Int, size: Int, maxSegment: Int = ScatterTable.unlimitedSegment,
        chunkCapacity: Int = ScatterTable.defaultChunkCapacity
    ) throws(ScatterListError) {
        let segment = try pageMultipleMaxSegment(maxSegment)
        self.init(chunkCapacity: chunkCapacity)
        appendRun(of: pages, offset: offset, size: size, maxSegment: segment, growingLast: false, pinned: false)
        if count > 0 { markEnd() }
    }

    /// Appends `size` bytes that start `offset` bytes into the first of `pages`, with
    /// the merging rules of ``init(pages:offset:size:maxSegment:chunkCapacity:)``.
    /// When the last entry ends at a page boundary and the first page is the next
    /// frame, that entry grows first (up to `maxSegment`). END moves to the new last
    /// entry. Mirrors the kernel's `sg_alloc_append_table_from_pages`.
    ///
    /// Unlike the kernel, a grown entry gains only the bytes `size` covers, and an
    /// entry holding pins is never grown with pages that hold none. As for the
    /// initialiser, an `offset` or `size` the pages do not hold traps.
    ///
    /// - Throws: ``ScatterListError/maxSegmentBelowPage(_:)``;
    ///   ``ScatterListError/appendOffsetNotZero(_:)`` when the table is not empty and
    ///   `offset` is not 0.
    public func append<Pages: Collection<Page>>(
        pages: Pages, offset: Int, size: Int, maxSegment: Int = ScatterTable.unlimitedSegment
    ) throws(ScatterListError) {
        let segment = try pageMultipleMaxSegment(maxSegment)
        guard count == 0 || offset == 0 else { throw .appendOffsetNotZero(offset) }
        appendRun(of: pages, offset: offset, size: size, maxSegment: segment, growingLast: true, pinned: false)
        if count > 0 { markEnd() }
    }

    /// Appends entries for `size` bytes from `offset` into `pages`; `maxSegment` is a
    /// page multiple. With `growingLast`, the last entry first takes the pages that
    /// continue it. Does not move END.
    func appendRun<Pages: Collection<Page>>(
        of pages: Pages, offset: Int, size: Int, maxSegment: Int, growingLast: Bool, pinned: Bool
    ) {
        precondition(offset >= 0 && offset < pageSize, "the first page's offset is within the page")
        precondition(size >= 0 && size <= pages.count * pageSize - offset, "the pages hold the offset and size")
        var left = size
        var index = pages.startIndex
        if growingLast, count > 0 {
            let last = slot(count - 1)
            let end = last.pointee.address &+ UInt(last.pointee.length)
            if last.pointee.isPinned == pinned, end & pageMask == 0 {
                var nextFrame = end >> UInt(pageShift)
                while left > 0, index != pages.endIndex, pages[index].frame == nextFrame,
                      last.pointee.length + pageSize <= maxSegment {
                    let piece = Swift.min(left, pageSize)
                    last.pointee.length += piece
                    left -= piece
                    nextFrame += 1
                    pages.formIndex(after: &index)
                }
            }
        }
        var firstOffset = offset
        while left > 0 {
            let first = pages[index]
            var runPages = 1
            pages.formIndex(after: &index)
            while index != pages.endIndex, runPages * pageSize - firstOffset < left,
                  (runPages + 1) * pageSize <= maxSegment, pages[index].frame == first.frame + UInt(runPages) {
                runPages += 1
                pages.formIndex(after: &index)
            }
            let length = Swift.min(left, runPages * pageSize - firstOffset)
            appendEntry(page: first, offset: firstOffset, length: length, pinned: pinned)
            left -= length
            firstOffset = 0
        }
    }
}
