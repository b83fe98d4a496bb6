extension IOIterator {
    /// The number of pages the remaining bytes touch, at most `max`.
    ///
    /// UBUF, XARRAY and FOLIOQ count the pages spanned by the position and count;
    /// IOVEC, KVEC and BVEC add up the pages each segment spans; PIPE counts the
    /// fresh pages a write of ``count`` bytes would take; DISCARD touches none.
    /// Mirrors the kernel's `iov_iter_npages`.
    public func pageCount(max: Int) -> Int {
        precondition(max >= 0, "pageCount(max:) takes a non-negative maximum")
        if count == 0 { return 0 }
        switch kind {
        case .ubuf:
            return Swift.min(max, PagesOfRange(MemoryRange(address: base &+ UInt(offset), length: count)).count)
        case .xarray:
            return Swift.min(max, Self.pagesSpanned(from: Int(base) + offset, count: count))
        case .folioq:
            return Swift.min(max, Self.pagesSpanned(from: offset, count: count))
        case .iovec, .kvec, .bvec:
            var pages = 0
            walk(maxBytes: count) { range in
                pages += PagesOfRange(range).count
                return pages >= max ? 0 : range.length
            }
            return Swift.min(max, pages)
        case .pipe:
            return Swift.min(max, (count + pageSize - 1) >> pageShift)
        case .discard:
            return 0
        }
    }

    /// The pages `count` bytes span from `position`, for any `count` up to `Int.max`:
    /// whole pages and the rest are counted apart, so that nothing overflows.
    private static func pagesSpanned(from position: Int, count: Int) -> Int {
        let rest = (position & Int(pageMask)) + (count & Int(pageMask))
        return (count >> pageShift) + ((rest + pageSize - 1) >> pageShift)
    }

    /// The bitwise OR of the addresses and lengths of the remaining pieces: its low
    /// bits tell the strictest alignment all of them share. Mirrors the kernel's
    /// `iov_iter_alignment`.
    public var alignment: UInt {
        if count == 0 { return 0 }
        switch kind {
        case .ubuf, .xarray:
            return (base &+ UInt(offset)) | UInt(count)
        case .folioq:
            return UInt(offset) | UInt(count)
        case .iovec, .kvec, .bvec:
            var result: UInt = 0
            walk(maxBytes: count) { range in
                result |= range.address | UInt(range.length)
                return range.length
            }
            return result
        case .pipe, .discard:
            return UInt(count)
        }
    }
}
