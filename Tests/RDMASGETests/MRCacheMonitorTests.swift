import Glibc
import IterExtract
import RDMASGE
import Testing
import SoftVerbs
import TestKit
import Synchronization

/// The MR cache's memory monitor: memory that goes away (unmapped, moved, dropped, mapped
/// over) is never handed out again, and user memory the monitor does not watch is never reused.
///
/// The fork test runs in a process of its own: `fork` makes the parent's private pages
/// copy-on-write, and the parent's next write moves them to new frames, which the
/// recycled-buffer test (and other tests of physical pages) would count as stale (a real
/// device pins its pages, and the kernel copies pinned pages for the child instead).
///
/// The tests run in parallel, mapping and unmapping in one area of the address space:
/// another test's unmap inside a cache's watched span invalidates nothing of that cache's
/// (no region overlaps it), and the few there are cannot overflow its queue.
@Suite("MR cache memory monitor")
struct MRCacheMonitorTests {
    typealias Statistics = MRCache<SoftProtectionDomain>.Statistics
    let verbs: VerbsPair

    init() throws {
        verbs = try VerbsPair(connect: false)
    }

    static let length = 4 * pageSize

    /// Where ``map(at:fixed:)`` places new mappings: far below where the kernel puts those
    /// it chooses, so that no mapping of a test running in parallel lands in the hole a
    /// test leaves to map again at the same address (and in application memory for the
    /// thread sanitizer, which is below 1 TiB there).
    static let area: UInt = 0x00E0_0000_0000
    static let nextPlace = Atomic<UInt>(0)

    /// Maps `length` bytes of anonymous memory, at `address` if given (never over a mapping
    /// unless `fixed`), and writes them so their pages exist.
    func map(at address: UInt? = nil, fixed: Bool = false) throws -> UInt {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | (fixed ? MAP_FIXED : MAP_FIXED_NOREPLACE)
        var pointer: UnsafeMutableRawPointer?
        if let address {
            pointer = mmap(UnsafeMutableRawPointer(bitPattern: address), Self.length, PROT_READ | PROT_WRITE, flags, -1, 0)
        } else {
            repeat {
                let place = Self.area + Self.nextPlace.add(1, ordering: .relaxed).oldValue * UInt(2 * Self.length)
                pointer = mmap(UnsafeMutableRawPointer(bitPattern: place), Self.length, PROT_READ | PROT_WRITE, flags, -1, 0)
            } while pointer == MAP_FAILED && errno == EEXIST
        }
        try #require(pointer != MAP_FAILED, "mmap failed (errno \(errno))")
        memset(pointer!, 0x5A, Self.length)
        return UInt(bitPattern: pointer)
    }

    /// Moves the mapping at `address` to `target` with `mremap(MREMAP_MAYMOVE | MREMAP_FIXED)`
    /// (which Glibc's module does not import: it is a GNU extension).
    func move(_ address: UInt, to target: UInt) throws -> UnsafeMutableRawPointer {
        typealias Remap = @convention(c) (UnsafeMutableRawPointer?, Int, Int, Int32, UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?
        let symbol = try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mremap"))
        let remap = unsafeBitCast(symbol, to: Remap.self)
        let (mayMove, fixed): (Int32, Int32) = (1, 2)
        let moved = remap(UnsafeMutableRawPointer(bitPattern: address), Self.length, Self.length, mayMove | fixed,
                          UnsafeMutableRawPointer(bitPattern: target))
        try #require(moved != MAP_FAILED, "mremap failed (errno \(errno))")
        return moved!
    }

    /// Looks up the whole mapping at `address` with a reference, and releases it.
    func lookUp(_ cache: MRCache<SoftProtectionDomain>, _ address: UInt) throws -> KeyResolution {
        let resolution = try cache.resolve(MemoryRange(address: address, length: Self.length), access: .localWrite, retaining: true)
        cache.release(lkey: resolution.lkey)
        return resolution
    }

    /// Registers the mapping at `address`, lets `change` take its memory away (and map new
    /// memory at the same address), and checks the next lookup registers again.
    func expectNewRegistration(after change: (UInt) throws -> Void) throws {
        let cache = MRCache(domain: verbs.domain)
        let address = try map()
        defer { munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length) }
        let first = try lookUp(cache, address)
        #expect(try lookUp(cache, address) == first, "watched memory is reused while it stays")
        try change(address)
        let second = try lookUp(cache, address)
        #expect(second.lkey != first.lkey, "a lookup after the memory went away got the old region")
        #expect(cache.coverage(lkey: first.lkey) == nil)
        let statistics = cache.statistics
        #expect(statistics.hits == 1 && statistics.misses == 2 && statistics.registrations == 2)
        #expect(statistics.monitoredRegistrations == 2 && statistics.unmonitoredRegistrations == 0)
        #expect(statistics.monitorInvalidations == 1 && statistics.deregistrations == 1)
        #expect(verbs.device.registeredRegionCount == 1)
    }

    @Test("munmap, then new memory at the same address: a new registration, never the old lkey")
    func unmapAndMapAgain() throws {
        try expectNewRegistration { address in
            munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length)
            let again = try map(at: address)
            #expect(again == address, "the new mapping is at the old address")
        }
    }

    @Test("mremap moves the mapping away and new memory takes its place")
    func remapAway() throws {
        try expectNewRegistration { address in
            let target = try map()
            let moved = try move(address, to: target)
            defer { munmap(moved, Self.length) }
            let again = try map(at: address)
            #expect(again == address, "the new mapping is at the old address")
        }
    }

    @Test("madvise(MADV_DONTNEED) drops the pages")
    func dropPages() throws {
        try expectNewRegistration { address in
            #expect(madvise(UnsafeMutableRawPointer(bitPattern: address), Self.length, MADV_DONTNEED) == 0)
        }
    }

    @Test("MAP_FIXED maps new memory over the cached range")
    func mapOver() throws {
        try expectNewRegistration { address in
            let again = try map(at: address, fixed: true)
            #expect(again == address)
        }
    }

    @Test("a region in use when its memory goes is not handed out again and goes at its last release")
    func unmappedWhileInUse() throws {
        let cache = MRCache(domain: verbs.domain)
        let address = try map()
        defer { munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length) }
        let range = MemoryRange(address: address, length: Self.length)
        let held = try cache.resolve(range, access: .localWrite, retaining: true)
        munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length)
        #expect(try map(at: address) == address)
        let fresh = try cache.resolve(range, access: .localWrite, retaining: true)
        #expect(fresh.lkey != held.lkey, "a lookup after munmap got the region in use")
        #expect(cache.references(lkey: held.lkey) == 1 && verbs.device.registeredRegionCount == 2)
        cache.release(lkey: held.lkey)
        #expect(cache.coverage(lkey: held.lkey) == nil && verbs.device.registeredRegionCount == 1)
        cache.release(lkey: fresh.lkey)
        #expect(cache.statistics.monitorInvalidations == 1)
    }

    @Test("more unmaps than the monitor's queue holds before a lookup: every region is forgotten")
    func queueOverflow() throws {
        let cache = MRCache(domain: verbs.domain)
        let addresses = try (0..<100).map { _ in try map() }
        for address in addresses { _ = try lookUp(cache, address) }
        #expect(cache.regionCount == addresses.count)
        for address in addresses { munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length) }
        let fresh = try map()
        defer { munmap(UnsafeMutableRawPointer(bitPattern: fresh), Self.length) }
        _ = try lookUp(cache, fresh)
        #expect(cache.regionCount == 1 && verbs.device.registeredRegionCount == 1)
        #expect(cache.statistics.monitorInvalidations == addresses.count)
    }

    @Test("unmaps of memory only another cache watches do not disturb this one, however many")
    func foreignUnmaps() throws {
        let cache = MRCache(domain: verbs.domain)
        let address = try map()
        defer { munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length) }
        let first = try lookUp(cache, address)
        let other = MRCache(domain: verbs.domain)
        let elsewhere = try (0..<(2 * 64)).map { _ in try map() }
        for place in elsewhere { _ = try lookUp(other, place) }
        for place in elsewhere { munmap(UnsafeMutableRawPointer(bitPattern: place), Self.length) }
        #expect(try lookUp(cache, address) == first, "another cache's unmaps made this one forget its memory")
        #expect(cache.statistics.monitorInvalidations == 0 && cache.regionCount == 1)
    }

    @Test("a disabled cache does not watch what it registers: it never reuses a region anyway")
    func disabledCacheWatchesNothing() throws {
        let cache = MRCache(domain: verbs.domain, isEnabled: false)
        let address = try map()
        defer { munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length) }
        let first = try lookUp(cache, address)
        #expect(try lookUp(cache, address) != first)
        #expect(cache.statistics == Statistics(misses: 2, registrations: 2, deregistrations: 2))
    }

    @Test(".none never reuses user memory and deregisters it at release")
    func unmonitoredMode() throws {
        let cache = MRCache(domain: verbs.domain, monitor: .none)
        let memory = PlainBuffer(pages: 4)
        let range = MemoryRange(address: memory.address, length: Self.length)
        let first = try cache.resolve(range, access: .localWrite, retaining: true)
        let second = try cache.resolve(range, access: .localWrite, retaining: true)
        #expect(first.lkey != second.lkey, "unmonitored user memory was reused")
        cache.release(lkey: first.lkey)
        cache.release(lkey: second.lkey)
        let third = try lookUp(cache, memory.address)
        #expect(third.lkey != first.lkey && third.lkey != second.lkey)
        #expect(cache.statistics == Statistics(misses: 3, registrations: 3, deregistrations: 3, unmonitoredRegistrations: 3))
        #expect(cache.registeredBytes == 0 && cache.regionCount == 0 && verbs.device.registeredRegionCount == 0)
        // Memory the library owns (no reference) is still reused.
        let owned = try cache.resolve(range, access: .localWrite, retaining: false)
        #expect(try cache.resolve(range, access: .localWrite, retaining: false) == owned)
    }

    @Test("10,000 rounds of recycled [UInt8] buffers: no hit on pages that changed, bounded registered bytes")
    func recycledArrays() throws {
        let limits = MRCache<SoftProtectionDomain>.Limits(maxRegions: 8, maxBytes: 1 << 20)
        let cache = MRCache(domain: verbs.domain, limits: limits)
        let pages = try PhysicalPages()
        // The physical pages under each region when it was registered: what a device pins.
        var pinned: [UInt32: [UInt64]] = [:]  // by lkey, one frame per page of the coverage
        var staleHits = 0
        // glibc keeps freed memory mapped until trimming gives it back (`madvise`, `brk`):
        // every other round trims, so a buffer comes back over memory that stayed or was replaced.
        typealias Trim = @convention(c) (Int) -> Int32
        let trim = unsafeBitCast(try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim")), to: Trim.self)
        for round in 0..<10_000 {
            if round % 2 == 1 { _ = trim(0) }
            let buffer = [UInt8](repeating: UInt8(truncatingIfNeeded: round), count: round % 2 == 0 ? 64 << 10 : 100 << 10)
            try buffer.withUnsafeBytes { bytes in
                let range = MemoryRange(address: UInt(bitPattern: bytes.baseAddress), length: bytes.count)
                let misses = cache.statistics.misses
                let resolution = try cache.resolve(range, access: .localWrite, retaining: true)
                defer { cache.release(lkey: resolution.lkey) }
                if cache.statistics.misses != misses {
                    pinned[resolution.lkey] = try pages.frames(resolution.coverage)
                } else if let then = pinned[resolution.lkey] {
                    // The buffer's pages, against those the region pinned (pages not there then are skipped).
                    let start = range.address & ~pageMask
                    let now = try pages.frames(start..<((range.address + UInt(range.length) + pageMask) & ~pageMask))
                    let first = Int((start - resolution.coverage.lowerBound) / UInt(pageSize))
                    if zip(then[first...], now).contains(where: { $0 != 0 && $0 != $1 }) { staleHits += 1 }
                }
            }
            #expect(cache.registeredBytes <= limits.maxBytes && cache.regionCount <= limits.maxRegions)
        }
        #expect(staleHits == 0, "lookups hit regions whose pages had changed")
        // Hits are not asserted: with other tests allocating on the same heaps, a buffer
        // may land elsewhere every round (alone, about half the rounds hit).
        #expect(cache.statistics.unmonitoredRegistrations == 0)
    }

    @Test("a child of fork leaves the parent's cache alone, and its unmaps do not reach the parent")
    func fork() async {
        // In a process of its own: a fork makes every private page of the test process
        // copy-on-write, which tests of physical pages running alongside would see.
        await #expect(processExitsWith: .success) {
            try! MRCacheMonitorTests().checkForkLeavesParentAlone()
        }
    }

    /// The body of ``fork()``, in its exit test's process: traps on any difference.
    func checkForkLeavesParentAlone() throws {
        let cache = MRCache(domain: verbs.domain)
        let address = try map()
        let first = try lookUp(cache, address)
        let status = statusOfForkedChild {
            // Async-signal-safe calls only.
            munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length)
        }
        precondition(status == 0, "the child exited with status \(String(describing: status)) (nil: it hung unmapping memory the parent's monitor watches)")
        let again = try lookUp(cache, address)
        precondition(again == first, "the parent's region survives the child's unmap")
        precondition(cache.statistics.monitorInvalidations == 0, "the child's unmap invalidated nothing in the parent")
        munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length)
        let remapped = try map(at: address)
        precondition(remapped == address, "the address maps again")
        let fresh = try lookUp(cache, address)
        precondition(fresh.lkey != first.lkey, "the parent's monitor still works after fork")
        munmap(UnsafeMutableRawPointer(bitPattern: address), Self.length)
    }
}

/// Which physical page frame backs each page of a range (`/proc/self/pagemap`, as root),
/// to judge staleness as a device would: a region pins the frames it was registered over.
struct PhysicalPages: ~Copyable {
    private let descriptor: Int32

    init() throws {
        descriptor = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        try #require(descriptor >= 0, "cannot open /proc/self/pagemap (errno \(errno))")
    }

    deinit { close(descriptor) }

    /// The frame numbers of the pages in `range` (page-aligned); 0 for a page not present
    /// (or when the process may not see frame numbers).
    func frames(_ range: Range<UInt>) throws -> [UInt64] {
        var entries = [UInt64](repeating: 0, count: range.count / pageSize)
        let read = entries.withUnsafeMutableBytes { bytes in
            pread(descriptor, bytes.baseAddress, bytes.count, off_t(range.lowerBound / UInt(pageSize) * 8))
        }
        try #require(read == entries.count * 8, "reading /proc/self/pagemap failed (errno \(errno))")
        return entries.map { $0 & (1 << 63) != 0 ? $0 & ((1 << 55) - 1) : 0 }
    }
}
