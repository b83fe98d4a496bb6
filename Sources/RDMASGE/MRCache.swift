import IterExtract
import Synchronization

/// A memory-region cache: registers memory on a miss, keeps regions that are in use
/// registered, and deregisters idle ones lazily, least recently used first, when the
/// cache is over its limits.
///
/// Registrations are aligned to page boundaries and grow to absorb idle regions they
/// overlap or touch, so that a buffer used piece by piece ends up as one region. A
/// lookup that retains (extraction from a user-backed iterator) takes a reference
/// on the region, released with ``release(lkey:)``; a referenced region is never
/// evicted. ``invalidate(_:)`` must be called when memory is unmapped or reused: an
/// idle region there is deregistered at once, one in use is never handed out again
/// and is deregistered after its last release.
///
/// A disabled cache never reuses a region: every lookup registers, and the region is
/// deregistered when its last reference is released (a region looked up without a
/// reference stays until limits, ``flush()`` or ``invalidate(_:)`` remove it).
///
/// Lookups that hit take the lock once and do not allocate. Registration and
/// deregistration go through the protection domain, so the cache runs unchanged
/// over ``SoftVerbs`` and libibverbs. Mirrors the registration caches of RDMA
/// middleware (UCX `rcache`, libfabric MR cache); the kernel has no equivalent
/// because it uses one `local_dma_lkey`.
public final class MRCache<Domain: ProtectionDomain>: KeyResolver, @unchecked Sendable {
    /// How much idle memory the cache keeps registered.
    public struct Limits: Hashable, Sendable {
        /// The most regions registered at once (regions in use may exceed it).
        public var maxRegions: Int
        /// The most bytes registered at once (regions in use may exceed it).
        public var maxBytes: Int

        public init(maxRegions: Int = .max, maxBytes: Int = .max) {
            precondition(maxRegions >= 0 && maxBytes >= 0, "cache limits are not negative")
            self.maxRegions = maxRegions
            self.maxBytes = maxBytes
        }
    }

    /// What the cache has done since it was created.
    public struct Statistics: Hashable, Sendable {
        /// Lookups answered by a registered region.
        public var hits = 0
        /// Lookups that registered memory.
        public var misses = 0
        /// Successful registrations.
        public var registrations = 0
        /// Regions deregistered, for any reason.
        public var deregistrations = 0
        /// Idle regions deregistered to get under the limits.
        public var evictions = 0
        /// Regions hit by ``MRCache/invalidate(_:)``.
        public var invalidations = 0

        public init(hits: Int = 0, misses: Int = 0, registrations: Int = 0, deregistrations: Int = 0,
                    evictions: Int = 0, invalidations: Int = 0) {
            self.hits = hits
            self.misses = misses
            self.registrations = registrations
            self.deregistrations = deregistrations
            self.evictions = evictions
            self.invalidations = invalidations
        }
    }

    struct Entry {
        var region: Domain.Region
        var coverage: Range<UInt>
        var references = 0
        var lastUse: UInt64
        /// Whether lookups may hand the region out (false once invalidated, or when disabled).
        var isReusable: Bool
    }

    struct State {
        var entries: [UInt32: Entry] = [:]
        /// Reusable regions by start address, for interval lookup.
        var index: [(start: UInt, lkey: UInt32)] = []
        var longest = 0
        var bytes = 0
        var clock: UInt64 = 0
        var statistics = Statistics()
    }

    /// The domain regions are registered in.
    public let domain: Domain
    /// The access every registration gets.
    public let access: AccessFlags
    /// How much idle memory the cache keeps.
    public let limits: Limits
    /// Whether lookups may reuse regions.
    public let isEnabled: Bool
    private let state = Mutex(State())

    /// Creates a cache that registers memory in `domain` with `access`.
    public init(domain: Domain, access: AccessFlags = .localWrite, limits: Limits = Limits(), isEnabled: Bool = true) {
        self.domain = domain
        self.access = access
        self.limits = limits
        self.isEnabled = isEnabled
    }

    deinit {
        for entry in state.withLock({ $0.entries.values.map(\.region) }) { try? entry.deregister() }
    }

    /// The counters.
    public var statistics: Statistics { state.withLock { $0.statistics } }
    /// The number of regions registered.
    public var regionCount: Int { state.withLock { $0.entries.count } }
    /// The number of bytes registered.
    public var registeredBytes: Int { state.withLock { $0.bytes } }
    /// The references held on all regions together.
    public var referenceCount: Int { state.withLock { $0.entries.values.reduce(0) { $0 + $1.references } } }

    /// The references held on the region with `lkey`, or `nil` when no such region is registered.
    public func references(lkey: UInt32) -> Int? { state.withLock { $0.entries[lkey]?.references } }

    /// The addresses the region with `lkey` covers, if it is registered.
    public func coverage(lkey: UInt32) -> Range<UInt>? { state.withLock { $0.entries[lkey]?.coverage } }

    /// The region with `lkey`, if it is registered (for its rkey, to expose it to a peer).
    public func region(lkey: UInt32) -> Domain.Region? { state.withLock { $0.entries[lkey]?.region } }

    public func resolve(_ range: MemoryRange, access: AccessFlags, retaining: Bool) throws(RDMAError) -> KeyResolution {
        try validate(range)
        guard self.access.isSuperset(of: access) else {
            throw .accessDenied(address: range.address, lkey: nil, missing: access.subtracting(self.access))
        }
        var dropped: [Domain.Region] = []
        defer { deregister(dropped) }
        return try state.withLock { (state) throws(RDMAError) -> KeyResolution in
            state.clock += 1
            if isEnabled, let (lkey, position) = Self.regionCovering(range, in: &state) {
                // One hash lookup found the entry; mutate it in place.
                state.statistics.hits += 1
                state.entries.values[position].lastUse = state.clock
                if retaining { state.entries.values[position].references += 1 }
                return KeyResolution(lkey: lkey, coverage: state.entries.values[position].coverage)
            }
            state.statistics.misses += 1
            return try register(range, retaining: retaining, in: &state, dropping: &dropped)
        }
    }

    public func release(lkey: UInt32) {
        var dropped: [Domain.Region] = []
        defer { deregister(dropped) }
        state.withLock { state in
            guard let position = state.entries.index(forKey: lkey), state.entries.values[position].references > 0 else {
                preconditionFailure("released lkey 0x\(String(lkey, radix: 16)), which holds no reference in this cache")
            }
            state.entries.values[position].references -= 1
            let entry = state.entries.values[position]
            guard entry.references == 0 else { return }
            if entry.isReusable && isEnabled {
                state.clock += 1
                state.entries.values[position].lastUse = state.clock
                evictOverLimits(in: &state, dropping: &dropped)
            } else {
                dropped.append(Self.remove(lkey, from: &state))
            }
        }
    }

    /// Forgets every region that overlaps `range`, because the memory there is going
    /// away or being reused: idle regions are deregistered now, regions in use after
    /// their last release, and none is handed out again.
    public func invalidate(_ range: MemoryRange) {
        guard range.length > 0 else { return }
        let end = range.address &+ UInt(range.length)
        var dropped: [Domain.Region] = []
        defer { deregister(dropped) }
        state.withLock { state in
            for (lkey, entry) in state.entries
            where entry.coverage.lowerBound < end && range.address < entry.coverage.upperBound && (entry.isReusable || entry.references == 0) {
                state.statistics.invalidations += 1
                if entry.references == 0 {
                    dropped.append(Self.remove(lkey, from: &state))
                } else {
                    Self.unindex(lkey, from: &state)
                    state.entries[lkey]!.isReusable = false
                }
            }
        }
    }

    /// Deregisters every idle region.
    public func flush() {
        var dropped: [Domain.Region] = []
        defer { deregister(dropped) }
        state.withLock { state in
            for (lkey, entry) in state.entries where entry.references == 0 {
                dropped.append(Self.remove(lkey, from: &state))
            }
        }
    }

    // MARK: Internals (called with the lock held)

    /// Registers a page-aligned region for `range`, absorbing idle reusable regions it
    /// overlaps or touches when the result stays within the device's region size.
    private func register(
        _ range: MemoryRange, retaining: Bool, in state: inout State, dropping dropped: inout [Domain.Region]
    ) throws(RDMAError) -> KeyResolution {
        let maxSize = UInt(domain.attributes.maxMemoryRegionSize) & ~pageMask
        let start = range.address & ~pageMask
        let requestedEnd = range.address + UInt(range.length)
        let (rounded, overflow) = requestedEnd.addingReportingOverflow(pageMask)
        var end = overflow ? UInt.max & ~pageMask : rounded & ~pageMask
        if end - start > maxSize { end = start + maxSize }
        var coverage = start..<end
        var absorbed: [UInt32] = []
        if isEnabled {
            for (lkey, entry) in state.entries where entry.isReusable && entry.references == 0
                && entry.coverage.lowerBound <= coverage.upperBound && coverage.lowerBound <= entry.coverage.upperBound {
                let union = min(coverage.lowerBound, entry.coverage.lowerBound)..<max(coverage.upperBound, entry.coverage.upperBound)
                if union.upperBound - union.lowerBound <= maxSize {
                    coverage = union
                    absorbed.append(lkey)
                }
            }
        }
        let region: Domain.Region
        do {
            region = try domain.registerMemory(
                address: coverage.lowerBound, length: Int(coverage.upperBound - coverage.lowerBound), access: access)
        } catch {
            throw .registrationFailed(error)
        }
        state.statistics.registrations += 1
        for lkey in absorbed { dropped.append(Self.remove(lkey, from: &state)) }
        let entry = Entry(region: region, coverage: coverage, references: retaining ? 1 : 0,
                          lastUse: state.clock, isReusable: isEnabled)
        state.entries[region.lkey] = entry
        state.bytes += region.length
        if isEnabled { Self.index(region.lkey, coverage, in: &state) }
        evictOverLimits(in: &state, dropping: &dropped, sparing: region.lkey)
        return KeyResolution(lkey: region.lkey, coverage: coverage)
    }

    /// Evicts idle regions, least recently used first, until the cache is within its limits.
    /// `spared` is a region just handed out, which must outlive the lookup that made it.
    private func evictOverLimits(in state: inout State, dropping dropped: inout [Domain.Region], sparing spared: UInt32? = nil) {
        while state.entries.count > limits.maxRegions || state.bytes > limits.maxBytes {
            guard let victim = state.entries.filter({ $0.value.references == 0 && $0.key != spared })
                .min(by: { $0.value.lastUse < $1.value.lastUse })
            else { return }
            state.statistics.evictions += 1
            dropped.append(Self.remove(victim.key, from: &state))
        }
    }

    /// The reusable region that covers all of `range`, with its position in `entries`.
    private static func regionCovering(_ range: MemoryRange, in state: inout State) -> (UInt32, Dictionary<UInt32, Entry>.Index)? {
        let end = range.address + UInt(range.length)
        var position = upperBound(of: range.address, in: state.index)
        while position > 0 {
            position -= 1
            let candidate = state.index[position]
            if candidate.start &+ UInt(state.longest) <= range.address { break }
            if let found = state.entries.index(forKey: candidate.lkey),
               state.entries.values[found].coverage.upperBound >= end {
                return (candidate.lkey, found)
            }
        }
        return nil
    }

    /// The number of index entries that start at or before `address`.
    private static func upperBound(of address: UInt, in index: [(start: UInt, lkey: UInt32)]) -> Int {
        var low = 0
        var high = index.count
        while low < high {
            let middle = (low + high) / 2
            if index[middle].start <= address { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private static func index(_ lkey: UInt32, _ coverage: Range<UInt>, in state: inout State) {
        state.index.insert((coverage.lowerBound, lkey), at: upperBound(of: coverage.lowerBound, in: state.index))
        state.longest = max(state.longest, Int(coverage.upperBound - coverage.lowerBound))
    }

    private static func unindex(_ lkey: UInt32, from state: inout State) {
        if let position = state.index.firstIndex(where: { $0.lkey == lkey }) { state.index.remove(at: position) }
    }

    private static func remove(_ lkey: UInt32, from state: inout State) -> Domain.Region {
        let entry = state.entries.removeValue(forKey: lkey)!
        unindex(lkey, from: &state)
        state.bytes -= entry.region.length
        state.statistics.deregistrations += 1
        return entry.region
    }

    /// Deregisters regions the cache dropped, outside the lock. A region the backend
    /// refuses to deregister is forgotten all the same: the cache never hands it out again.
    private func deregister(_ regions: [Domain.Region]) {
        for region in regions { try? region.deregister() }
    }
}
