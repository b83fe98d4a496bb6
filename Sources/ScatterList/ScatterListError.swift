import IterExtract

/// Errors that scatter-table operations throw for bad input or exhausted resources.
///
/// Every throwing operation leaves no trace: the table, the iterator and the pin
/// ledger are as they were before the call.
public enum ScatterListError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A max segment size below one page (after rounding down to a page multiple).
    case maxSegmentBelowPage(Int)
    /// Pages appended to a non-empty table must start at offset 0
    /// (the kernel's `sg_alloc_append_table_from_pages` refuses with `EINVAL`).
    case appendOffsetNotZero(Int)
    /// The table's entries hold fewer bytes than asked for
    /// (the kernel's `sg_nents_for_len` returns `EINVAL`).
    case tableTooShort(requested: Int, available: Int)
    /// The IOVA space of an ``IOMMUMapper`` has no free run of this many pages.
    case iovaSpaceExhausted(requestedPages: Int, largestFreeRun: Int)
    /// The iterator layer refused, with its error unchanged: a kind that cannot be
    /// extracted (DISCARD, PIPE), a PIPE source, a pin limit, a user range that wraps.
    /// The one error strategy of the extraction contract
    /// (`IOIterator.extractionLimit(maxSize:capacity:acceptsPipe:)`).
    case iterator(IOIteratorError)

    /// What went wrong, in a sentence for logs and error messages.
    public var description: String {
        switch self {
        case .maxSegmentBelowPage(let size): "a max segment of \(size) bytes is below one page"
        case .appendOffsetNotZero(let offset): "pages appended to a non-empty table start at offset \(offset), not 0"
        case .tableTooShort(let requested, let available):
            "the table holds \(available) bytes, fewer than the \(requested) asked for"
        case .iovaSpaceExhausted(let requested, let largest):
            "no run of \(requested) free IOVA pages (the largest is \(largest))"
        case .iterator(let error): error.description
        }
    }
}
