/// User pages pinned out of a user-backed iterator and described as a BVEC, for I/O
/// that outlives the caller's iterator. The pins are released exactly once: by
/// ``release()`` or, failing that, when the value is destroyed.
///
/// Mirrors the kernel's `netfs_extract_user_iter`.
public struct PinnedUserPages: ~Copyable {
    private let storage: UnsafeMutableBufferPointer<BioVec>
    /// The number of elements in use.
    public let elementCount: Int
    /// The bytes described.
    public let byteCount: Int
    /// The direction of the iterator the pages came from.
    public let direction: IODirection
    private let ledger: PinLedger

    init(storage: UnsafeMutableBufferPointer<BioVec>, elementCount: Int, byteCount: Int,
         direction: IODirection, ledger: PinLedger) {
        self.storage = storage
        self.elementCount = elementCount
        self.byteCount = byteCount
        self.direction = direction
        self.ledger = ledger
    }

    /// The elements: one per page, the first with an offset, all but the last
    /// ending at a page boundary.
    public var bioVecs: UnsafeBufferPointer<BioVec> {
        UnsafeBufferPointer(rebasing: storage[..<elementCount])
    }

    /// Calls `body` with a BVEC iterator over the pinned pages.
    public func withIterator<R, E: Error>(_ body: (inout IOIterator) throws(E) -> R) throws(E) -> R {
        // The elements were made from pinned pages: nothing to check.
        var iterator = IOIterator(kind: .bvec, direction: direction, count: byteCount,
                                  segments: UnsafeRawPointer(storage.baseAddress), segmentCount: elementCount)
        return try body(&iterator)
    }

    /// Releases every pin.
    public consuming func release() {}

    deinit {
        ledger.unpin(bioVecs.lazy.map(\.page))
        storage.deallocate()
    }
}

extension IOIterator {
    /// Pins up to `maxSize` bytes of a user-backed iterator's pages and describes them
    /// as ``PinnedUserPages``, advancing past them.
    ///
    /// - Throws: ``IOIteratorError/pinLimitExceeded(requested:available:)``; on error
    ///   the iterator is unchanged and no pin is held.
    public mutating func extractUserPages(maxSize: Int, ledger: PinLedger = .shared) throws(IOIteratorError) -> PinnedUserPages {
        precondition(isUserBacked, "extractUserPages(maxSize:ledger:) needs a UBUF or IOVEC iterator")
        let limit = Swift.min(maxSize, count)
        let capacity = Swift.max(pageCount(max: .max), 1)
        let storage = UnsafeMutableBufferPointer<BioVec>.allocate(capacity: capacity)
        var pages: [Page] = []
        pages.reserveCapacity(capacity)
        var elements = 0
        var bytes = 0
        var working = self
        do {
            while bytes < limit {
                let start = pages.count
                let extraction = try working.extractPages(
                    into: &pages, maxPages: capacity - start, maxSize: limit - bytes, ledger: ledger)
                if extraction.byteCount == 0 { break }
                var left = extraction.byteCount
                var pageOffset = extraction.firstPageOffset
                for page in pages[start...] {
                    let length = Swift.min(left, pageSize - pageOffset)
                    storage[elements] = BioVec(page: page, offset: pageOffset, length: length)
                    elements += 1
                    left -= length
                    pageOffset = 0
                }
                bytes += extraction.byteCount
            }
        } catch {
            ledger.unpin(pages)
            storage.deallocate()
            throw error
        }
        self = working
        return PinnedUserPages(storage: storage, elementCount: elements, byteCount: bytes,
                               direction: direction, ledger: ledger)
    }
}
