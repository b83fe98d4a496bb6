/// A (page, offset, length) triple: one element of a BVEC iterator (the kernel's
/// `struct bio_vec`).
///
/// `offset` may exceed a page and `length` may span several pages: the bytes are
/// `length` bytes starting `offset` bytes after the start of `page`, in consecutive
/// frames.
@frozen
public struct BioVec: Hashable, Sendable {
    /// The page the bytes start in (or before, when `offset` exceeds a page).
    public var page: Page
    /// The offset of the first byte from the start of `page`.
    public var offset: Int
    /// The number of bytes.
    public var length: Int

    /// An element of `length` bytes at `offset` from the start of `page`.
    @inlinable
    public init(page: Page, offset: Int, length: Int) {
        precondition(offset >= 0 && length >= 0, "a bio_vec has a non-negative offset and length")
        self.page = page
        self.offset = offset
        self.length = length
    }

    /// The address of the first byte.
    @inlinable public var address: UInt { page.address &+ UInt(offset) }
}
