#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Locking

/// A page-aligned arena of memory that hands out folios.
///
/// The pool's memory is a shared-memory file mapped once (the pool's *direct
/// view*); a page's frame number is its address in that view. Folios are handed out
/// by a buddy allocator, so a folio's pages are always contiguous frames. Each page
/// has a side-table slot, found by subtracting the pool's first frame (O(1), no
/// hashing), that records its owning folio; each folio has a reference count and a
/// pin count. A folio returns to the pool only when both counts reach zero.
///
/// The whole pool can be registered as one memory region, giving every page one
/// lkey: the userspace analogue of the kernel's `local_dma_lkey`.
public final class PagePool: @unchecked Sendable {
    /// How the pool picks among free blocks.
    public enum Placement: Sendable {
        /// Lowest free block first: consecutive allocations are contiguous.
        case contiguous
        /// A random free block each time (seeded), so that consecutive allocations
        /// are usually *not* contiguous, as tests of merging need.
        case shuffled(seed: UInt64)
    }

    /// The first byte of the direct view.
    public let baseAddress: UnsafeMutableRawPointer
    /// The number of pages in the pool.
    public let pageCount: Int
    /// The frame number of the pool's first page.
    public let firstFrame: UInt
    let fileDescriptor: Int32
    private let state: LockedValue<PoolState>

    /// Creates a pool of `pageCount` pages.
    ///
    /// - Throws: ``MemoryError/outOfMemory(bytes:)`` when the arena cannot be created.
    public init(pageCount: Int, placement: Placement = .contiguous) throws(MemoryError) {
        precondition(pageCount > 0 && pageCount <= Int(Int32.max), "a pool needs 1...Int32.max pages")
        let fd = PagePool.anonymousFile()
        guard fd >= 0 else { throw .outOfMemory(bytes: pageCount * pageSize) }
        guard ftruncate(fd, off_t(pageCount * pageSize)) == 0,
              let base = mmap(nil, pageCount * pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
              base != MAP_FAILED
        else {
            close(fd)
            throw .outOfMemory(bytes: pageCount * pageSize)
        }
        self.fileDescriptor = fd
        self.baseAddress = base
        self.pageCount = pageCount
        self.firstFrame = UInt(bitPattern: base) >> UInt(pageShift)
        self.state = LockedValue(PoolState(pageCount: pageCount, placement: placement))
    }

    /// A shared-memory file with no name, so that ``VirtualMapping`` can map its pages again.
    private static func anonymousFile() -> Int32 {
        var template = Array("/dev/shm/iterextract-pool-XXXXXX".utf8CString)
        var fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 {
            template = Array("/tmp/iterextract-pool-XXXXXX".utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        }
        if fd >= 0 { template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
        return fd
    }

    // Observers hear of the unmapping before it happens.
    deinit {
        UnmapNotifications.announce(addressRange)
        munmap(baseAddress, pageCount * pageSize)
        close(fileDescriptor)
        state.withLock { $0.deallocate() }
    }

    /// The number of bytes in the pool.
    public var byteCount: Int { pageCount * pageSize }

    /// The range of addresses of the pool's direct view.
    public var addressRange: Range<UInt> {
        let start = UInt(bitPattern: baseAddress)
        return start..<start + UInt(byteCount)
    }

    /// Whether `page` belongs to this pool.
    @inlinable
    public func contains(_ page: Page) -> Bool {
        page.frame &- firstFrame < UInt(pageCount)
    }

    /// The number of pages not allocated.
    public var freePageCount: Int { state.withLock { $0.freePages } }

    /// Allocates a folio of 2^`order` pages with a reference count of 1.
    ///
    /// - Throws: ``MemoryError/poolExhausted(order:)`` when no free block is large enough.
    public func allocateFolio(order: Int = 0) throws(MemoryError) -> Folio {
        precondition((0...Folio.maxOrder).contains(order), "folio order \(order) is outside 0...\(Folio.maxOrder)")
        let index = state.withLock { $0.allocate(order: order) }
        guard let index else { throw .poolExhausted(order: order) }
        return Folio(head: page(atIndex: index), order: order)
    }

    /// Allocates `count` single pages (one order-0 folio each), all or none.
    ///
    /// With ``PageArrangement/swappedHalves`` the list is rearranged as the kernel's
    /// iterator tests do: page `i` is swapped with page `i + count/2` for
    /// `i < count/4`, so that neighbours in the list are not neighbours in memory.
    public func allocatePages(count: Int, arrangement: PageArrangement = .asAllocated) throws(MemoryError) -> [Page] {
        var pages: [Page] = []
        pages.reserveCapacity(count)
        for _ in 0..<count {
            do {
                pages.append(try allocateFolio(order: 0).head)
            } catch {
                for page in pages { release(Folio(head: page, order: 0)) }
                throw error
            }
        }
        if arrangement == .swappedHalves {
            for i in 0..<count / 4 { pages.swapAt(i, i + count / 2) }
        }
        return pages
    }

    /// The folio that owns `page`, or `nil` when the page is free.
    public func folio(containing page: Page) -> Folio? {
        precondition(contains(page), "\(page) is not a page of this pool")
        let index = Int(page.frame - firstFrame)
        return state.withLock { state in
            state.headIndex(of: index).map { Folio(head: self.page(atIndex: $0), order: Int(state.order[$0])) }
        }
    }

    /// Takes a reference on `folio`.
    public func retain(_ folio: Folio) {
        modifyCounts(of: folio) { ref, _ in ref += 1 }
    }

    /// Drops a reference on `folio`; the folio is freed when no references or pins remain.
    public func release(_ folio: Folio) {
        modifyCounts(of: folio) { ref, _ in
            precondition(ref > 0, "released \(folio) which holds no reference")
            ref -= 1
        }
    }

    /// Pins `folio` (for DMA): it is not freed while pinned, even with no references.
    public func pin(_ folio: Folio) {
        modifyCounts(of: folio) { _, pins in pins += 1 }
    }

    /// Drops a pin taken by ``pin(_:)``.
    public func unpin(_ folio: Folio) {
        modifyCounts(of: folio) { _, pins in
            precondition(pins > 0, "unpinned \(folio) which is not pinned")
            pins -= 1
        }
    }

    /// The reference and pin counts of the folio that owns `page`.
    public func counts(of page: Page) -> (references: Int, pins: Int) {
        precondition(contains(page), "\(page) is not a page of this pool")
        return state.withLock { state in
            guard let head = state.headIndex(of: Int(page.frame - firstFrame)) else { return (0, 0) }
            return (Int(state.refCount[head]), Int(state.pinCount[head]))
        }
    }

    private func modifyCounts(of folio: Folio, _ body: (inout Int32, inout Int32) -> Void) {
        precondition(contains(folio.head), "\(folio) is not a folio of this pool")
        let index = Int(folio.head.frame - firstFrame)
        state.withLock { state in
            precondition(state.headIndex(of: index) == index && Int(state.order[index]) == folio.order,
                         "\(folio) is not an allocated folio of this pool")
            body(&state.refCount[index], &state.pinCount[index])
            if state.refCount[index] == 0 && state.pinCount[index] == 0 {
                state.free(index: index)
            }
        }
    }

    @inlinable
    func page(atIndex index: Int) -> Page { Page(frame: firstFrame + UInt(index)) }
}

/// How ``PagePool/allocatePages(count:arrangement:)`` orders the pages it returns.
public enum PageArrangement: Sendable {
    /// In allocation order.
    case asAllocated
    /// Page `i` swapped with page `i + count/2` for `i < count/4`.
    case swappedHalves
}
