#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract
import Locking

/// A memory-region cache: registers memory on a miss, keeps regions that are in use
/// registered, and deregisters idle ones lazily, least recently used first, when the
/// cache is over its limits.
///
/// Registrations are aligned to page boundaries and grow to absorb idle regions they
/// overlap or touch, so that a buffer used piece by piece ends up as one region. A
/// lookup that retains (extraction from a user-backed iterator) takes a reference
/// on the region, released with ``release(lkey:)``; a referenced region is never
/// evicted. ``invalidate(_:)`` must be called when memory looked up without a reference
/// is unmapped or reused (user memory has the monitor, below): an idle region there is
/// deregistered at once, one in use is never handed out again and is deregistered after
/// its last release.
///
/// A disabled cache never reuses a region: every lookup registers, and the region is
/// deregistered when its last reference is released (a region looked up without a
/// reference stays until limits, ``flush()`` or ``invalidate(_:)`` remove it).
///
/// User memory (lookups that retain) can go away behind the cache's back: `free` trims
/// the heap, the program unmaps or moves a mapping, or drops its pages with `madvise`,
/// and new memory may appear at the same address. A region there would pin the old pages
/// on a real device: stale data, silently. So user memory is reused only while the
/// process's memory monitor (``MRCacheMonitor/userfaultfd``, see `MemoryMonitor`)
/// watches it: the monitor invalidates regions whose memory goes away, and no lookup
/// that starts after the `munmap` (or `madvise`, `mremap`) returned gets them. User
/// memory the monitor cannot watch, and all user memory with ``MRCacheMonitor/none``, is
/// *unmonitored*: its region is never reused and is deregistered at its last release,
/// as in a disabled cache. Correctness never depends on the monitor; speed does (see
/// ``MRCacheStatistics/unmonitoredRegistrations``). Memory looked up without a reference (the
/// library's own) is reused either way and invalidated by whoever frees it.
///
/// After `fork()`, only the parent may use a cache: the child's memory is not watched.
///
/// A hit and a release usually take no lock and do not allocate. A small table of
/// recently used regions (`MRCacheLookaside`) leads a hit to the region's state word,
/// where one compare-and-exchange counts the hit and takes the reference; a hit the
/// table cannot answer takes the lock, searches a sorted array of the reusable regions
/// and may fill the table. A release finds the state word through an open-addressing
/// table of lkeys that is readable without the lock, and takes the lock only for the
/// last release of an invalidated region, or one that leaves an idle region over the
/// limits. Statistics stay exact. The least-recently-used order is approximate: regions
/// used without the lock between the same two locked operations (registrations, locked
/// hits and releases) count as used at the same time.
///
/// Registration and deregistration go through the protection domain, so the cache runs
/// unchanged over `SoftVerbs` and libibverbs. Mirrors the registration caches of RDMA
/// middleware (UCX `rcache`, libfabric MR cache); the kernel has no equivalent
/// because it uses one `local_dma_lkey`.
public final class MRCache<Domain: ProtectionDomain>: KeyResolver, UnmapObserver, @unchecked Sendable {
    /// How much idle memory the cache keeps registered.
    public struct Limits: Hashable, Sendable {
        /// The most regions registered at once (regions in use may exceed it).
        public var maxRegions: Int
        /// The most bytes registered at once (regions in use may exceed it).
        public var maxBytes: Int

        /// Limits of `maxRegions` regions and `maxBytes` bytes registered at once; none by
        /// default (a cache created without limits takes ``recommended`` instead).
        public init(maxRegions: Int = .max, maxBytes: Int = .max) {
            precondition(maxRegions >= 0 && maxBytes >= 0, "cache limits are not negative")
            self.maxRegions = maxRegions
            self.maxBytes = maxBytes
        }
    }

    /// What the cache has done since it was created.
    public typealias Statistics = MRCacheStatistics

    /// The domain regions are registered in.
    public let domain: Domain
    /// The access every registration gets.
    public let access: AccessFlags
    /// How much idle memory the cache keeps.
    public let limits: Limits
    /// Whether lookups may reuse regions.
    public let isEnabled: Bool
    /// How the cache learns that user memory went away.
    public let monitor: MRCacheMonitor
    /// The process's memory monitor, when this cache is subscribed to it.
    private let memoryMonitor: MemoryMonitor?
    /// What the monitor tells this cache (never written when `memoryMonitor` is `nil`).
    private let inbox: MemoryMonitorInbox
    let state: LockedValue<MRCacheIndex>
    /// The index's lock-free front, held here so that a hit reaches it without the lock.
    let lookaside: MRCacheLookaside

    /// Creates a cache that registers memory in `domain` with `access`, keeping idle
    /// regions within `limits` (by default ``Limits/recommended``), reusing user memory
    /// only while `monitor` watches it.
    public init(
        domain: Domain, access: AccessFlags = .localWrite, limits: Limits = .recommended, isEnabled: Bool = true,
        monitor: MRCacheMonitor = .userfaultfd
    ) {
        self.domain = domain
        self.access = access
        self.limits = limits
        self.isEnabled = isEnabled
        self.monitor = monitor
        let index = MRCacheIndex(maxRegions: limits.maxRegions, maxBytes: limits.maxBytes)
        lookaside = index.lookaside
        state = LockedValue(index)
        let inbox = MemoryMonitorInbox()
        self.inbox = inbox
        let shared = isEnabled && monitor == .userfaultfd ? MemoryMonitor.shared : nil
        memoryMonitor = shared?.subscribe(inbox) == true ? shared : nil
        UnmapNotifications.addObserver(self)
    }

    deinit {
        UnmapNotifications.removeObserver(self)
        memoryMonitor?.unsubscribe(inbox)
        inbox.deallocate()
        deregister(state.withLock { $0.allRegions })
        lookaside.deallocate()
    }

    /// The counters.
    public var statistics: Statistics { state.withLock { $0.statistics } }
    /// The number of regions registered.
    public var regionCount: Int { state.withLock { $0.count } }
    /// The number of bytes registered.
    public var registeredBytes: Int { state.withLock { $0.bytes } }
    /// The references held on all regions together.
    public var referenceCount: Int { state.withLock { $0.referenceCount } }

    /// The references held on the region with `lkey`, or `nil` when no such region is registered.
    public func references(lkey: UInt32) -> Int? { state.withLock { $0.references(lkey: lkey) } }

    /// The addresses the region with `lkey` covers, if it is registered.
    public func coverage(lkey: UInt32) -> Range<UInt>? { state.withLock { $0.coverage(lkey: lkey) } }

    /// The region with `lkey`, if it is registered (for its rkey, to expose it to a peer).
    public func region(lkey: UInt32) -> Domain.Region? {
        // A checked cast that cannot fail: every region the index holds came from `domain`.
        state.withLock { $0.region(lkey: lkey) } as? Domain.Region
    }

    /// Finds a cached region that covers the first byte of `range` and allows `access`, or
    /// registers `range` on a miss; with `retaining`, takes a reference on the region that
    /// ``release(lkey:)`` gives back.
    ///
    /// A hit usually takes no lock; a miss registers through the protection domain, evicting
    /// idle regions to stay within ``Limits``. Ranges the memory monitor reported gone are
    /// invalidated first; with `retaining`, a miss has the monitor watch the new region, and
    /// a region it cannot watch is handed out to this lookup only.
    ///
    /// - Throws: ``RDMAError/zeroLength(address:)``, ``RDMAError/addressOverflow(address:length:)``,
    ///   ``RDMAError/accessDenied(address:lkey:missing:)`` for access the cache does not grant,
    ///   ``RDMAError/registrationFailed(_:)`` when the device refuses the registration. A
    ///   failed lookup takes no reference.
    public func resolve(_ range: MemoryRange, access: AccessFlags, retaining: Bool) throws(RDMAError) -> KeyResolution {
        // `validate`'s checks inline, calling it only to throw: the call would cost a hit a tenth of its time.
        if range.length <= 0 || range.address.addingReportingOverflow(UInt(range.length)).overflow { try validate(range) }
        guard self.access.isSuperset(of: access) else {
            throw .accessDenied(address: range.address, lkey: nil, missing: access.subtracting(self.access))
        }
        // Memory went away (or the monitor is reading what went away): forget it first.
        if inbox.hasNews { takeMonitorEvents() }
        var stale: MRCacheRegionRecord?
        if isEnabled {
            switch lookaside.hit(address: range.address, end: range.address &+ UInt(range.length), retaining: retaining) {
            case .found(let resolution): return resolution
            case .absent: break
            case .stale(let record): stale = record
            }
        }
        return try resolveUnderLock(range, retaining: retaining, undoing: stale)
    }

    /// Gives back one reference taken by a retaining ``resolve(_:access:retaining:)`` on the
    /// region with `lkey`. A region invalidated while in use is deregistered at its last
    /// release.
    public func release(lkey: UInt32) {
        let release = lookaside.release(lkey: lkey)
        if case .released = release { return }
        deregister(state.withLock { $0.finish(release, lkey: lkey) })
    }

    /// Forgets every region that overlaps `range`, because the memory there is going
    /// away or being reused: idle regions are deregistered now, regions in use after
    /// their last release, and none is handed out again.
    public func invalidate(_ range: MemoryRange) {
        guard range.length > 0 else { return }
        let (end, wraps) = range.address.addingReportingOverflow(UInt(range.length))
        deregister(state.withLock { $0.invalidate(range.address..<(wraps ? .max : end)) })
    }

    /// Invalidates `addresses`: memory the library owns (a `PagePool`, a
    /// `VirtualMapping`) is about to be unmapped. Every cache hears of it through
    /// `UnmapNotifications`, monitor or not.
    public func addressesWillUnmap(_ addresses: Range<UInt>) {
        deregister(state.withLock { $0.invalidate(addresses) })
    }

    /// Deregisters every idle region.
    public func flush() {
        deregister(state.withLock { $0.flush() })
    }

    // MARK: Internals

    /// Waits until the monitor has posted what it is reading, then invalidates the
    /// ranges it posted.
    private func takeMonitorEvents() {
        inbox.waitWhileBusy()
        deregister(state.withLock { invalidateMonitored(&$0) })
    }

    /// Invalidates the ranges the monitor posted (everything, when some were lost to a
    /// full queue). Under the lock. Returns the regions to deregister.
    private func invalidateMonitored(_ index: inout MRCacheIndex) -> [MRCacheIndex.Region] {
        var dropped: [MRCacheIndex.Region] = []
        let before = index.counters.invalidations
        if inbox.drain({ dropped += index.invalidate($0) }) { dropped += index.invalidate(0..<UInt.max) }
        index.counters.monitorInvalidations += index.counters.invalidations - before
        return dropped
    }

    /// A miss in the lookaside: looks under the lock, and else registers a page-aligned
    /// region for `range`, absorbing idle reusable regions it overlaps or touches when
    /// the result stays within the device's region size; when that merged registration
    /// finds memory unmapped, registers the page-aligned range alone. First takes back a
    /// hit the lookaside counted on `stale` while its entry changed.
    private func resolveUnderLock(_ range: MemoryRange, retaining: Bool, undoing stale: MRCacheRegionRecord?) throws(RDMAError) -> KeyResolution {
        var dropped: [MRCacheIndex.Region] = []
        defer { deregister(dropped) }
        return try state.withLock { (index) throws(RDMAError) -> KeyResolution in
            if let stale { dropped = index.undoStaleHit(stale, retaining: retaining) }
            if inbox.hasNews { dropped += invalidateMonitored(&index) }
            if isEnabled, let found = index.hit(range, retaining: retaining) { return found }
            index.counters.misses += 1
            // Waiting under the lock is safe: the monitor never takes it.
            if let memoryMonitor {
                memoryMonitor.catchUp(inbox)
                if inbox.hasNews { dropped += invalidateMonitored(&index) }
            }
            let maxSize = UInt(domain.attributes.maxMemoryRegionSize) & ~pageMask
            let start = range.address & ~pageMask
            let (rounded, overflow) = (range.address + UInt(range.length)).addingReportingOverflow(pageMask)
            var end = overflow ? UInt.max & ~pageMask : rounded & ~pageMask
            if end - start > maxSize { end = start + maxSize }
            var (coverage, absorbed) = isEnabled ? index.grown(start..<end, maxSize: maxSize) : (start..<end, [])
            // User memory is reused only if watched, before it is registered: an unmap from
            // here on is posted, and drained before any later lookup.
            // Unwatched, it is never reused: then it absorbs no neighbour either.
            var isWatched = false
            if retaining {
                isWatched = memoryMonitor?.watch(coverage, for: inbox) ?? false
                if !isWatched, !absorbed.isEmpty {
                    (coverage, absorbed) = (start..<end, [])
                    isWatched = memoryMonitor?.watch(coverage, for: inbox) ?? false
                }
            }
            let region: Domain.Region
            do throws(VerbsError) {
                region = try register(coverage)
            } catch {
                // An idle neighbour the merge absorbed may cover memory that is gone
                // (EFAULT): what was asked for is still registrable on its own (UCX #9592).
                guard !absorbed.isEmpty, error.errno == EFAULT else { throw .registrationFailed(error) }
                (coverage, absorbed) = (start..<end, [])
                do throws(VerbsError) { region = try register(coverage) } catch { throw .registrationFailed(error) }
            }
            if isWatched { index.counters.monitoredRegistrations += 1 }
            if isEnabled, retaining, !isWatched { index.counters.unmonitoredRegistrations += 1 }
            let added = index.add(region, lkey: region.lkey, coverage: coverage, retaining: retaining,
                                  isReusable: isEnabled && (isWatched || !retaining), absorbing: absorbed, lookedUp: range.address)
            // Not `+=`, which allocates even when both are empty.
            if dropped.isEmpty { dropped = added } else { dropped += added }
            return KeyResolution(lkey: region.lkey, coverage: coverage)
        }
    }

    /// Registers `coverage` with the cache's access.
    private func register(_ coverage: Range<UInt>) throws(VerbsError) -> Domain.Region {
        try domain.registerMemory(address: coverage.lowerBound, length: Int(coverage.upperBound - coverage.lowerBound), access: access)
    }

    /// Deregisters regions the cache dropped, outside the lock. A region the backend
    /// refuses to deregister is forgotten all the same: the cache never hands it out again.
    func deregister(_ regions: [MRCacheIndex.Region]) {
        for region in regions { try? region.deregister() }
    }
}
