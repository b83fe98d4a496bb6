/// The eight ways an ``IOIterator`` can describe memory.
public enum IOIteratorKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// One user buffer.
    case ubuf
    /// An array of user buffers (`struct iovec`).
    case iovec
    /// An array of library-owned buffers (`struct iovec` layout, the kernel's `kvec`).
    case kvec
    /// An array of (page, offset, length) triples.
    case bvec
    /// A byte range of a ``PageCache``.
    case xarray
    /// A chain of ``FolioQueue`` segments.
    case folioq
    /// A ``PagePipe`` being filled (destination only).
    case pipe
    /// A byte count that goes nowhere (destination only).
    case discard

    /// Whether the memory belongs to the caller (UBUF, IOVEC): extraction pins it.
    @inlinable
    public var isUserBacked: Bool { self == .ubuf || self == .iovec }

    /// The kind in capitals, as the kernel's `ITER_` constants name it: `UBUF`, `BVEC`, `FOLIOQ`.
    public var description: String { rawValue.uppercased() }
}

/// Which way data moves through an iterator's memory.
public enum IODirection: String, Sendable, CustomStringConvertible {
    /// Data is read out of the buffer (the kernel's `ITER_SOURCE`, a WRITE).
    case source
    /// Data lands in the buffer (the kernel's `ITER_DEST`, a READ).
    case destination

    /// `source` or `destination`.
    public var description: String { rawValue }
}
