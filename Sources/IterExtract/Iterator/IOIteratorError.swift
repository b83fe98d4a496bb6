/// Errors that iterator construction and extraction throw for bad input.
///
/// Every throwing operation leaves no trace: the iterator is where it was, no
/// output was appended and no pin is held.
public enum IOIteratorError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The iterator kind describes no memory that this extraction could describe:
    /// DISCARD always; PIPE for extraction to a scatter table or SGEs, which describe
    /// only memory that exists.
    case notExtractable(IOIteratorKind)
    /// A PIPE iterator was asked to be a source; pipes are filled, not read.
    case pipeIsDestinationOnly
    /// More segments than the limit (the kernel's `UIO_MAXIOV`, 1024).
    case tooManySegments(count: Int, limit: Int)
    /// A segment whose address range wraps around the address space.
    case addressOverflow(address: UInt, length: Int)
    /// A segment with a negative length (a `size_t` above `Int.max`).
    case invalidLength(segment: Int, length: Int)
    /// Segment lengths whose sum passes `Int.max` at `segment`.
    case lengthOverflow(segment: Int)
    /// A count larger than the `total` bytes the segments hold.
    case countExceedsSegments(count: Int, total: Int)
    /// A page-cache range that starts before position 0 or ends past `Int.max`.
    case invalidPosition(position: Int, count: Int)
    /// Pinning would take the ledger past its limit of pinned pages.
    case pinLimitExceeded(requested: Int, available: Int)
    /// The pipe, or the pool behind it, has no room for another page.
    case pipeFull

    /// What went wrong, in a sentence for logs and error messages.
    public var description: String {
        switch self {
        case .notExtractable(let kind): "a \(kind) iterator describes no memory to extract"
        case .pipeIsDestinationOnly: "a PIPE iterator can only be a destination"
        case .tooManySegments(let count, let limit): "\(count) segments exceed the limit of \(limit)"
        case .addressOverflow(let address, let length):
            "the range of \(length) bytes at 0x\(String(address, radix: 16)) wraps around the address space"
        case .invalidLength(let segment, let length): "segment \(segment) has the invalid length \(length)"
        case .lengthOverflow(let segment): "the segment lengths up to segment \(segment) add up past Int.max"
        case .countExceedsSegments(let count, let total): "a count of \(count) bytes exceeds the \(total) the segments hold"
        case .invalidPosition(let position, let count):
            "the \(count) bytes at page-cache position \(position) lie outside positions 0...Int.max"
        case .pinLimitExceeded(let requested, let available):
            "pinning \(requested) pages exceeds the \(available) the ledger still allows"
        case .pipeFull: "the pipe has no room for another page"
        }
    }
}
