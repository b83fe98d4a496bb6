import Glibc
import IterExtract
import Locking
import RDMASGE
import Synchronization
import Testing
import SoftVerbs
import TestKit

// The MR cache's lock-free hits and releases against a writer that invalidates, flushes
// and registers under tight limits, on real threads (run it under ThreadSanitizer too:
// `swift test --sanitize thread --filter MRCache`). A protection domain that records every
// registration checks the two promises that matter across threads: no region is handed
// out by a lookup that starts after an invalidation of its memory returned, and no region
// is deregistered while a thread holds a reference on it.

/// What the threads of a stress run share: a clock, the last completed invalidation of
/// each page, the references the threads hold, and every registration.
final class StressLedger: @unchecked Sendable {
    let pageCount: Int
    let base: UInt
    private let clock = Atomic<Int>(0)
    /// Per page, the clock when the last invalidation of it that has returned began.
    private let invalidatedAt: UnsafeMutablePointer<Atomic<Int>>
    private let state = LockedValue(State())

    struct State {
        var registeredAt: [UInt32: Int] = [:]
        var regions: [UInt32: SoftMemoryRegion] = [:]
        var held: [UInt32: Int] = [:]
        var violations: [String] = []
    }

    init(base: UInt, pageCount: Int) {
        self.base = base
        self.pageCount = pageCount
        invalidatedAt = .allocate(capacity: pageCount)
        for page in 0..<pageCount { (invalidatedAt + page).initialize(to: Atomic(-1)) }
    }

    deinit {
        invalidatedAt.deinitialize(count: pageCount)
        invalidatedAt.deallocate()
    }

    func tick() -> Int { clock.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue }

    func violate(_ message: String) { state.withLock { $0.violations.append(message) } }
    var violations: [String] { state.withLock { $0.violations } }

    func pages(of range: Range<UInt>) -> Range<Int> {
        let first = range.lowerBound < base ? 0 : Int((range.lowerBound - base) >> UInt(pageShift))
        let end = range.upperBound <= base ? 0 : Int((range.upperBound - base + pageMask) >> UInt(pageShift))
        return min(first, pageCount)..<min(end, pageCount)
    }

    /// Records that an invalidation of `range`, begun at `start`, has returned.
    func invalidated(_ range: Range<UInt>, startedAt start: Int) {
        for page in pages(of: range) { invalidatedAt[page].store(start, ordering: .sequentiallyConsistent) }
    }

    /// The last completed invalidation of every page, read before a lookup starts.
    func invalidations() -> [Int] { (0..<pageCount).map { invalidatedAt[$0].load(ordering: .sequentiallyConsistent) } }

    func registered(_ region: SoftMemoryRegion, at time: Int) {
        state.withLock {
            $0.registeredAt[region.lkey] = time
            $0.regions[region.lkey] = region
        }
    }

    /// Whether SoftVerbs still holds the region with `lkey` (asks the device, not the cache).
    func isRegistered(lkey: UInt32) -> Bool { state.withLock { $0.regions[lkey] }?.isRegistered == true }

    /// Checks an answer of a lookup that began after the invalidations in `before` returned.
    func checkHandedOut(_ resolution: KeyResolution, invalidationsBefore before: [Int], thread: Int) {
        guard let registered = state.withLock({ $0.registeredAt[resolution.lkey] }) else {
            return violate("thread \(thread): lkey 0x\(String(resolution.lkey, radix: 16)) was never registered")
        }
        for page in pages(of: resolution.coverage) where before[page] > registered {
            violate("thread \(thread): lkey 0x\(String(resolution.lkey, radix: 16)), registered at \(registered), handed out "
                    + "after an invalidation of page \(page) begun at \(before[page]) had returned")
        }
    }

    func hold(_ lkey: UInt32) { state.withLock { $0.held[lkey, default: 0] += 1 } }
    func drop(_ lkey: UInt32) { state.withLock { $0.held[lkey]! -= 1 } }

    /// Called by a region as it deregisters.
    func deregistering(lkey: UInt32) {
        if let held = state.withLock({ $0.held[lkey] }), held > 0 {
            violate("lkey 0x\(String(lkey, radix: 16)) deregistered while \(held) references are held")
        }
    }
}

/// A SoftVerbs region that reports its deregistration to the ledger.
final class StressRegion: MemoryRegion, @unchecked Sendable {
    let inner: SoftMemoryRegion
    let ledger: StressLedger
    init(_ inner: SoftMemoryRegion, ledger: StressLedger) {
        self.inner = inner
        self.ledger = ledger
    }
    var address: UInt { inner.address }
    var length: Int { inner.length }
    var lkey: UInt32 { inner.lkey }
    var rkey: UInt32 { inner.rkey }
    var access: AccessFlags { inner.access }
    func deregister() throws(VerbsError) {
        ledger.deregistering(lkey: lkey)
        try inner.deregister()
    }
}

/// A SoftVerbs protection domain whose registrations the ledger sees.
final class StressDomain: ProtectionDomain, @unchecked Sendable {
    let inner: SoftProtectionDomain
    let ledger: StressLedger
    init(_ inner: SoftProtectionDomain, ledger: StressLedger) {
        self.inner = inner
        self.ledger = ledger
    }
    var attributes: DeviceAttributes { inner.attributes }
    func registerMemory(address: UInt, length: Int, access: AccessFlags) throws(VerbsError) -> StressRegion {
        let time = ledger.tick()
        let region = try inner.registerMemory(address: address, length: length, access: access)
        ledger.registered(region, at: time)
        return StressRegion(region, ledger: ledger)
    }
    func createCompletionChannel() throws(VerbsError) -> SoftCompletionChannel { try inner.createCompletionChannel() }
    func createCompletionQueue(capacity: Int, channel: SoftCompletionChannel?) throws(VerbsError) -> SoftCompletionQueue {
        try inner.createCompletionQueue(capacity: capacity, channel: channel)
    }
    func createQueuePair(sendCompletions: SoftCompletionQueue, receiveCompletions: SoftCompletionQueue,
                         capabilities: QueuePairCapabilities) throws(VerbsError) -> SoftQueuePair {
        try inner.createQueuePair(sendCompletions: sendCompletions, receiveCompletions: receiveCompletions, capabilities: capabilities)
    }
    func close() throws(VerbsError) { try inner.close() }
}

@Suite("MR cache under concurrent stress")
struct MRCacheStressTests {
    @Test("lock-free hits and releases against invalidation, flushing and registration under tight limits")
    func stress() throws {
        let pageCount = 32
        let pool = try PagePool(pageCount: pageCount)
        let base = UInt(bitPattern: pool.baseAddress)
        let ledger = StressLedger(base: base, pageCount: pageCount)
        let device = SoftVerbs()
        let domain = StressDomain(try device.allocateProtectionDomain(), ledger: ledger)
        let limits = MRCache<StressDomain>.Limits(maxRegions: 4, maxBytes: 12 * pageSize)
        let cache = MRCache(domain: domain, limits: limits)
        let hitters = 3, rounds = 4000
        let lookups = Atomic<Int>(0)
        let hittersDone = Atomic<Int>(0)

        JoinableThread.run(hitters + 1) { thread in
            var random = SplitMix64(seed: UInt64(0x57E5 + thread))
            if thread == hitters {
                // The writer: invalidates, flushes and registers until the hitters finish.
                var step = 0
                while hittersDone.load(ordering: .acquiring) < hitters {
                    step += 1
                    switch Int.random(in: 0..<10, using: &random) {
                    case 0..<5:
                        let first = Int.random(in: 0..<pageCount, using: &random)
                        let pages = Int.random(in: 1...3, using: &random)
                        let range = base + UInt(first * pageSize)..<base + UInt(min(first + pages, pageCount) * pageSize)
                        let start = ledger.tick()
                        cache.invalidate(MemoryRange(address: range.lowerBound, length: range.count))
                        ledger.invalidated(range, startedAt: start)
                    case 5:
                        cache.flush()
                    default:
                        let page = Int.random(in: 0..<pageCount, using: &random)
                        let range = MemoryRange(address: base + UInt(page * pageSize), length: pageSize)
                        lookups.wrappingAdd(1, ordering: .relaxed)
                        guard let lkey = try? cache.resolve(range, access: [], retaining: true).lkey else {
                            return ledger.violate("writer step \(step): a lookup failed")
                        }
                        cache.release(lkey: lkey)
                    }
                }
                return
            }
            // A hitter: mostly a few hot ranges, so that most lookups hit without the lock.
            defer { hittersDone.wrappingAdd(1, ordering: .releasing) }
            for round in 0..<rounds {
                let page = Int.random(in: 0..<4, using: &random) == 0
                    ? Int.random(in: 0..<pageCount, using: &random) : 4 * Int.random(in: 0..<3, using: &random)
                let offset = Int.random(in: 0..<64, using: &random)
                let room = min(2 * pageSize, (pageCount - page) * pageSize - offset)
                let range = MemoryRange(address: base + UInt(page * pageSize + offset), length: Int.random(in: 1...room, using: &random))
                let retaining = Int.random(in: 0..<4, using: &random) != 0
                let before = ledger.invalidations()
                lookups.wrappingAdd(1, ordering: .relaxed)
                let resolution: KeyResolution
                do {
                    resolution = try cache.resolve(range, access: [], retaining: retaining)
                } catch {
                    return ledger.violate("thread \(thread) round \(round): \(error)")
                }
                ledger.checkHandedOut(resolution, invalidationsBefore: before, thread: thread)
                guard retaining else { continue }
                ledger.hold(resolution.lkey)
                if !ledger.isRegistered(lkey: resolution.lkey) {
                    ledger.violate("thread \(thread) round \(round): lkey 0x\(String(resolution.lkey, radix: 16)) is held but not registered")
                }
                ledger.drop(resolution.lkey)
                cache.release(lkey: resolution.lkey)
            }
        }

        #expect(ledger.violations.isEmpty, "\(ledger.violations.prefix(8))")
        // A last lookup and release, so that a region the writer's last lookup left idle over the limits goes.
        cache.release(lkey: try cache.resolve(MemoryRange(address: base, length: 1), access: [], retaining: true).lkey)
        let statistics = cache.statistics
        #expect(statistics.hits + statistics.misses == lookups.load(ordering: .relaxed) + 1, "\(statistics)")
        #expect(statistics.hits > rounds && statistics.evictions > 0 && statistics.invalidations > 0, "\(statistics)")
        #expect(cache.referenceCount == 0)
        #expect(statistics.registrations - statistics.deregistrations == cache.regionCount)
        #expect(cache.regionCount <= limits.maxRegions && cache.registeredBytes <= limits.maxBytes)
        #expect(device.registeredRegionCount == cache.regionCount)
        cache.flush()
        #expect(cache.regionCount == 0 && device.registeredRegionCount == 0)
    }
}
