/// What one call of ``IOIterator/extractPages(into:maxPages:maxSize:ledger:)`` produced.
public struct PageExtraction: Equatable, Sendable {
    /// The bytes described; the iterator advanced by exactly this many.
    public var byteCount: Int
    /// The offset of the first byte in the first page; later pages start at 0.
    public var firstPageOffset: Int
    /// The number of pages appended.
    public var pageCount: Int

    /// Creates a result.
    public init(byteCount: Int, firstPageOffset: Int, pageCount: Int) {
        self.byteCount = byteCount
        self.firstPageOffset = firstPageOffset
        self.pageCount = pageCount
    }

    /// The result of a call that described nothing.
    public static let empty = PageExtraction(byteCount: 0, firstPageOffset: 0, pageCount: 0)
}

extension IOIterator {
    /// Lists the pages of the next bytes of the iterator, appending at most
    /// `maxPages` pages to `pages`, and advances past the bytes they describe.
    ///
    /// Keeps the extraction contract stated on
    /// ``extractionLimit(maxSize:capacity:acceptsPipe:)``: `maxSize` is clamped to
    /// `count` and `maxReadWriteCount`; when it or `maxPages` is 0 the call returns
    /// ``PageExtraction/empty``. Per kind:
    /// - UBUF, IOVEC: one user segment per call; the pages are **pinned** in `ledger`
    ///   (release them with ``release(extractedPages:ledger:)``).
    /// - KVEC: one segment per call; listed, not pinned.
    /// - BVEC: may span several elements while inner boundaries are page-aligned.
    /// - XARRAY: one page per index, stopping at the first hole.
    /// - FOLIOQ: page by page across folios and segments.
    /// - PIPE: appends fresh, zeroed pages to the pipe for the caller to fill.
    ///
    /// Appending into an array with enough reserved capacity does not allocate.
    /// Mirrors the kernel's `iov_iter_extract_pages`, except that 0 pages returns 0
    /// (the kernel fails with `ENOMEM`).
    ///
    /// - Throws: on error the iterator, `pages` and the ledger are unchanged:
    ///   ``IOIteratorError/notExtractable(_:)`` for DISCARD;
    ///   ``IOIteratorError/pipeIsDestinationOnly`` for a PIPE source;
    ///   ``IOIteratorError/pinLimitExceeded(requested:available:)``;
    ///   ``IOIteratorError/pipeFull``.
    public mutating func extractPages(
        into pages: inout [Page], maxPages: Int, maxSize: Int, ledger: PinLedger = .shared
    ) throws(IOIteratorError) -> PageExtraction {
        let limit = try extractionLimit(maxSize: maxSize, capacity: maxPages, acceptsPipe: true)
        if limit == 0 { return .empty }
        // The iterator moves only when the extraction succeeded.
        return try withExtractionCursor { (cursor) throws(IOIteratorError) -> PageExtraction in
            switch cursor.kind {
            case .ubuf, .iovec:
                try cursor.extractUserPages(into: &pages, maxPages: maxPages, limit: limit, ledger: ledger)
            case .kvec:
                cursor.extractKVecPages(into: &pages, maxPages: maxPages, limit: limit)
            case .bvec:
                cursor.extractBVecPages(into: &pages, maxPages: maxPages, limit: limit)
            case .xarray, .folioq:
                cursor.extractFolioPages(into: &pages, maxPages: maxPages, limit: limit)
            case .pipe:
                try cursor.extractPipePages(into: &pages, maxPages: maxPages, limit: limit)
            case .discard:
                throw .notExtractable(.discard)
            }
        }
    }

    /// Releases what ``extractPages(into:maxPages:maxSize:ledger:)`` took on `pages`:
    /// their pins for a user-backed iterator, nothing otherwise.
    public func release<C: Collection<Page>>(extractedPages pages: C, ledger: PinLedger = .shared) {
        if extractionWillPin { ledger.unpin(pages) }
    }
}

/// One helper per kind, each moving the cursor past the bytes its pages describe.
extension ExtractionCursor {
    /// The first non-empty segment's piece, within `limit`.
    @inline(__always)
    private func firstSegmentPiece(limit: Int) -> MemoryRange? {
        var first: MemoryRange?
        _ = walk(maxBytes: limit) { range in
            first = range
            return 0
        }
        return first
    }

    /// UBUF, IOVEC: pins the pages of the first segment's piece.
    @inline(__always)
    fileprivate mutating func extractUserPages(
        into pages: inout [Page], maxPages: Int, limit: Int, ledger: PinLedger
    ) throws(IOIteratorError) -> PageExtraction {
        guard let piece = firstSegmentPiece(limit: limit) else { return .empty }
        let firstOffset = piece.pageOffset
        let pageBudget = Swift.min(maxPages, piece.pages.count)
        let bytes = Swift.min(piece.length, pageBudget * pageSize - firstOffset)
        let start = pages.count
        pages.append(contentsOf: MemoryRange(address: piece.address, length: bytes).pages)
        do {
            try ledger.pin(pages[start...])
        } catch {
            pages.removeSubrange(start...)
            throw error
        }
        advance(bytes)
        return PageExtraction(byteCount: bytes, firstPageOffset: firstOffset, pageCount: pages.count - start)
    }

    /// KVEC: lists the pages of the first segment's piece; no retention.
    @inline(__always)
    fileprivate mutating func extractKVecPages(into pages: inout [Page], maxPages: Int, limit: Int) -> PageExtraction {
        guard let piece = firstSegmentPiece(limit: limit) else { return .empty }
        let firstOffset = piece.pageOffset
        let pageBudget = Swift.min(maxPages, piece.pages.count)
        let bytes = Swift.min(piece.length, pageBudget * pageSize - firstOffset)
        let start = pages.count
        pages.append(contentsOf: MemoryRange(address: piece.address, length: bytes).pages)
        advance(bytes)
        return PageExtraction(byteCount: bytes, firstPageOffset: firstOffset, pageCount: pages.count - start)
    }

    /// BVEC: page by page across elements, while each page but the first starts at
    /// offset 0 and each but the last ends at the page boundary; no retention.
    @inline(__always)
    fileprivate mutating func extractBVecPages(into pages: inout [Page], maxPages: Int, limit: Int) -> PageExtraction {
        var listed = 0
        var bytes = 0
        var firstOffset = 0
        var stopped = false
        _ = walk(maxBytes: limit) { range in
            var taken = 0
            while !stopped, taken < range.length {
                let address = range.address &+ UInt(taken)
                let pieceOffset = Int(address & pageMask)
                if listed > 0, pieceOffset != 0 {
                    stopped = true
                    break
                }
                if listed == 0 { firstOffset = pieceOffset }
                let piece = Swift.min(range.length - taken, pageSize - pieceOffset)
                pages.append(Page(frame: address >> UInt(pageShift)))
                listed += 1
                bytes += piece
                taken += piece
                if listed >= maxPages || pieceOffset + piece != pageSize { stopped = true }
            }
            return stopped ? 0 : taken
        }
        advance(bytes)
        return PageExtraction(byteCount: bytes, firstPageOffset: firstOffset, pageCount: listed)
    }

    /// XARRAY, FOLIOQ: page by page across folios (XARRAY stops at a hole); no retention.
    @inline(__always)
    fileprivate mutating func extractFolioPages(into pages: inout [Page], maxPages: Int, limit: Int) -> PageExtraction {
        var listed = 0
        var firstOffset = -1
        let bytes = walk(maxBytes: limit, holes: .stop) { range in
            if firstOffset < 0 { firstOffset = range.pageOffset }
            var taken = 0
            while taken < range.length, listed < maxPages {
                let address = range.address &+ UInt(taken)
                pages.append(Page(frame: address >> UInt(pageShift)))
                listed += 1
                taken += Swift.min(range.length - taken, pageSize - Int(address & pageMask))
            }
            return taken
        }
        advance(bytes)
        return PageExtraction(byteCount: bytes, firstPageOffset: Swift.max(firstOffset, 0), pageCount: listed)
    }

    /// PIPE: appends zeroed pages to the pipe and lists them; the pipe owns them.
    @inline(__always)
    fileprivate mutating func extractPipePages(
        into pages: inout [Page], maxPages: Int, limit: Int
    ) throws(IOIteratorError) -> PageExtraction {
        let room = roomInNewestPipeBuffer
        // More pages than the bytes can fill change nothing, and fewer keep the products below in range.
        let maxPages = Swift.min(maxPages, limit / pageSize + 2)
        let budget = room > 0 ? Swift.min(limit, room + (maxPages - 1) * pageSize) : Swift.min(limit, maxPages * pageSize)
        var firstOffset = 0
        let start = pages.count
        let appended = appendToPipe(budget) { region in
            let address = UInt(bitPattern: region.baseAddress)
            if pages.count == start { firstOffset = Int(address & pageMask) }
            region.initializeMemory(as: UInt8.self, repeating: 0)
            pages.append(Page(frame: address >> UInt(pageShift)))
        }
        guard appended > 0 else { throw .pipeFull }
        return PageExtraction(byteCount: appended, firstPageOffset: firstOffset, pageCount: pages.count - start)
    }
}
