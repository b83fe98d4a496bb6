#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A virtually contiguous view of pool pages that need not be contiguous frames:
/// the userspace analogue of the kernel's `vmap`.
///
/// Each page of the view is the same memory as the pool page behind it (a shared
/// mapping of the pool's file), and ``AddressTranslation`` resolves addresses in
/// the view to those pages. This is how tests build a buffer that is contiguous for
/// the CPU but scattered for DMA, as the kernel's iterator tests do.
public final class VirtualMapping: @unchecked Sendable {
    /// The pool whose pages are shown; kept alive by the mapping.
    public let pool: PagePool
    /// The pages, in view order.
    public let pages: [Page]
    /// The first byte of the view.
    public let baseAddress: UnsafeMutableRawPointer
    private let table: UnsafeMutablePointer<Page>

    /// Maps `pages` (all from `pool`) one after another into fresh address space.
    public init(pages: [Page], of pool: PagePool) throws(MemoryError) {
        precondition(!pages.isEmpty, "a virtual mapping needs at least one page")
        precondition(pages.allSatisfy(pool.contains), "every page of a virtual mapping must belong to its pool")
        let length = pages.count * pageSize
        guard let base = mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), base != MAP_FAILED else {
            throw .outOfMemory(bytes: length)
        }
        for (i, page) in pages.enumerated() {
            let offset = off_t(page.frame - pool.firstFrame) << off_t(pageShift)
            let target = base + i * pageSize
            guard mmap(target, pageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, pool.fileDescriptor, offset) == target else {
                munmap(base, length)
                throw .outOfMemory(bytes: length)
            }
        }
        self.pool = pool
        self.pages = pages
        self.baseAddress = base
        self.table = .allocate(capacity: pages.count)
        table.initialize(from: pages, count: pages.count)
        let start = UInt(bitPattern: base)
        AddressTranslation.register(.init(start: start, end: start + UInt(length), pages: UnsafePointer(table)))
    }

    // Observers hear of the unmapping before it happens.
    deinit {
        let start = UInt(bitPattern: baseAddress)
        UnmapNotifications.announce(start..<start + UInt(pages.count * pageSize))
        AddressTranslation.unregister(start: start)
        munmap(baseAddress, pages.count * pageSize)
        table.deallocate()
    }

    /// The view's bytes.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress, count: pages.count * pageSize)
    }
}
