/// The size of a page in bytes.
@inlinable public var pageSize: Int { 4096 }

/// log2 of ``pageSize``.
@inlinable public var pageShift: Int { 12 }

/// Mask of the byte offset within a page.
@inlinable public var pageMask: UInt { 4095 }

/// A page of memory, identified by its frame number.
///
/// A page is a value: passing it around costs no reference counting. Its frame
/// number is its address in the process's direct view of memory shifted right by
/// ``pageShift``: for a ``PagePool`` page that is the pool's own mapping of it, for
/// any other memory it is the address itself. Metadata such as reference and pin
/// counts is kept by whoever allocated the page (see ``PagePool``), not in the page.
@frozen
public struct Page: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The frame number: the page's address divided by ``pageSize``.
    public var frame: UInt

    /// Creates a page from its frame number.
    @inlinable
    public init(frame: UInt) { self.frame = frame }

    /// The page whose direct view starts at `address`, which must be page-aligned.
    @inlinable
    public init(alignedAddress address: UInt) {
        precondition(address & pageMask == 0, "Page(alignedAddress:) needs a page-aligned address")
        self.frame = address >> UInt(pageShift)
    }

    /// The address of the first byte of the page in the direct view.
    @inlinable
    public var address: UInt { frame << UInt(pageShift) }

    /// A pointer to the first byte of the page. Frame 0 holds no memory, so asking
    /// for its pointer is a programmer error and traps.
    @inlinable
    public var baseAddress: UnsafeMutableRawPointer {
        guard let pointer = UnsafeMutableRawPointer(bitPattern: address) else {
            preconditionFailure("page frame 0 has no memory to point to")
        }
        return pointer
    }

    /// The page `n` frames after this one.
    @inlinable
    public func advanced(by n: Int) -> Page {
        Page(frame: UInt(bitPattern: Int(bitPattern: frame) &+ n))
    }

    /// Orders pages by frame number, as physical addresses are ordered.
    @inlinable
    public static func < (lhs: Page, rhs: Page) -> Bool { lhs.frame < rhs.frame }

    /// The frame number in hexadecimal, as `page#1f`.
    public var description: String { "page#\(String(frame, radix: 16))" }
}
