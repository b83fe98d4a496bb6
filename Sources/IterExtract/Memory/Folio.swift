/// A folio: 2^``order`` contiguous pages managed as one unit.
///
/// Like ``Page``, a folio is a value. Its reference and pin counts live in the
/// side table of the ``PagePool`` that allocated it.
@frozen
public struct Folio: Hashable, Sendable, CustomStringConvertible {
    /// The largest order a ``PagePool`` hands out (2 MiB folios).
    public static let maxOrder = 9

    /// The first page of the folio.
    public var head: Page
    /// log2 of the number of pages.
    public var order: Int

    /// Creates a folio description. The pages must be contiguous frames.
    @inlinable
    public init(head: Page, order: Int) {
        precondition((0...Folio.maxOrder).contains(order), "folio order \(order) is outside 0...\(Folio.maxOrder)")
        self.head = head
        self.order = order
    }

    /// The number of pages in the folio.
    @inlinable public var pageCount: Int { 1 << order }
    /// The folio's size in bytes.
    @inlinable public var size: Int { pageSize << order }
    /// The address of the folio's first byte.
    @inlinable public var address: UInt { head.address }

    /// The `n`th page of the folio.
    @inlinable
    public func page(at n: Int) -> Page {
        precondition(n >= 0 && n < pageCount, "page \(n) is outside a folio of \(pageCount) pages")
        return head.advanced(by: n)
    }

    /// The folio's bytes.
    @inlinable
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: head.baseAddress, count: size)
    }

    /// The head page and the order, as `folio(page#1f, order 2)`.
    public var description: String { "folio(\(head), order \(order))" }
}
