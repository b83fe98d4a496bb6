import Synchronization
import Locking

/// Translates virtual addresses to the pages behind them.
///
/// Most memory is its own direct view: the page of an address is `address >>
/// pageShift`. A ``VirtualMapping`` (the userspace analogue of the kernel's `vmap`)
/// shows pages of a ``PagePool`` at other, virtually contiguous addresses; for those
/// addresses the page is the pool page behind them, so a buffer can be virtually
/// contiguous and physically scattered, as the kernel's own iterator tests arrange.
/// Mirrors the kernel's `virt_to_page` / `vmalloc_to_page` split.
public enum AddressTranslation {
    struct Window: @unchecked Sendable {
        var start: UInt
        var end: UInt
        var pages: UnsafePointer<Page>
    }

    static let windows = LockedValue<[Window]>([])
    /// Read without the lock on the fast path: nonzero only while a mapping exists.
    static let windowCount = Atomic<Int>(0)

    /// The page that holds the byte at `address`.
    @inlinable
    public static func page(containing address: UInt) -> Page {
        if noWindows { return Page(frame: address >> UInt(pageShift)) }
        return mappedPage(containing: address)
    }

    /// Whether no ``VirtualMapping`` shows memory anywhere in `start..<end`, so that
    /// every page there is its own frame and a contiguous run is frame-contiguous.
    /// Asking once per range spares a lookup per page while any mapping exists.
    @inlinable
    public static func isDirect(from start: UInt, to end: UInt) -> Bool {
        noWindows || !anyWindow(overlapping: start, end)
    }

    @usableFromInline
    static var noWindows: Bool { windowCount.load(ordering: .acquiring) == 0 }

    @usableFromInline
    static func anyWindow(overlapping start: UInt, _ end: UInt) -> Bool {
        windows.withLock { list in list.contains { $0.start < end && start < $0.end } }
    }

    @usableFromInline
    static func mappedPage(containing address: UInt) -> Page {
        windows.withLock { list in
            for window in list where address >= window.start && address < window.end {
                return window.pages[Int((address - window.start) >> UInt(pageShift))]
            }
            return Page(frame: address >> UInt(pageShift))
        }
    }

    static func register(_ window: Window) {
        windows.withLock { list in
            list.append(window)
            windowCount.store(list.count, ordering: .releasing)
        }
    }

    static func unregister(start: UInt) {
        windows.withLock { list in
            list.removeAll { $0.start == start }
            windowCount.store(list.count, ordering: .releasing)
        }
    }
}
