/// The pages that hold the bytes of a ``MemoryRange``, in address order, each
/// resolved through ``AddressTranslation``.
public struct PagesOfRange: RandomAccessCollection, Sendable {
    /// The address of the first byte.
    public let address: UInt
    /// The number of pages.
    public let count: Int
    /// Whether no ``VirtualMapping`` shows memory in the range: each page is then its
    /// own frame, found without a lookup.
    @usableFromInline let isDirect: Bool

    /// The pages that hold `range` (none for an empty range).
    @inlinable
    public init(_ range: MemoryRange) {
        address = range.address & ~pageMask
        count = range.length == 0 ? 0 : Int((range.address &+ UInt(range.length) &- 1) >> UInt(pageShift) - range.address >> UInt(pageShift)) + 1
        let (end, wraps) = address.addingReportingOverflow(UInt(count) << UInt(pageShift))
        isDirect = AddressTranslation.isDirect(from: address, to: wraps ? .max : end)
    }

    /// The position of the first page: 0.
    @inlinable public var startIndex: Int { 0 }
    /// The position after the last page: the number of pages.
    @inlinable public var endIndex: Int { count }

    /// The page holding the `position`th page-sized stretch of the range.
    @inlinable
    public subscript(position: Int) -> Page {
        let pageAddress = address &+ UInt(position << pageShift)
        return isDirect ? Page(frame: pageAddress >> UInt(pageShift)) : AddressTranslation.page(containing: pageAddress)
    }
}

extension MemoryRange {
    /// The pages that hold this range's bytes.
    @inlinable public var pages: PagesOfRange { PagesOfRange(self) }

    /// The offset of the first byte within its page.
    @inlinable public var pageOffset: Int { Int(address & pageMask) }
}
