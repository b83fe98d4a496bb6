import Glibc
import IterExtract
import RDMASGE
import TestKit
import Testing
import SoftVerbs

/// The churn driver: the cache, the device, the model and the step log.
final class Churn {
    static let poolPages = 64
    static let steps = 600

    let run: ChurnRun
    let verbs: VerbsPair
    let pool: PagePool
    let sink: PlainBuffer
    let sinkRegion: SoftMemoryRegion
    let cache: MRCache<SoftProtectionDomain>
    let ledger = PinLedger(mode: .exact)
    var random: SplitMix64

    /// A reference the test holds: one lookup's, or the SGEs of one extraction.
    enum Holding {
        case lookup(lkey: UInt32)
        case extraction(sges: [SGE], iovecs: [iovec])
        var lkeys: [UInt32] {
            switch self {
            case .lookup(let lkey): [lkey]
            case .extraction(let sges, _): sges.map(\.lkey)
            }
        }
    }

    var held: [Holding] = []
    /// A logical clock, one tick per cache call.
    var clock = 0
    /// The tick of the last invalidation touching each pool page.
    var invalidatedAt: [Int]
    /// Every lkey the cache handed out: the tick it was registered at and what it covered.
    var seen: [UInt32: (registeredAt: Int, coverage: Range<UInt>)] = [:]
    /// The cache calls that looked a range up (each is one hit or one miss).
    var lookups = 0
    /// Whether a registration failure is armed on the device.
    var registrationFaultArmed = false
    /// The last region the cache registered (it may stay idle over the limits).
    var lastRegistered: UInt32?
    var nextProbeID: UInt64 = 1
    var log: [String] = []
    var failure: String?

    init(_ run: ChurnRun) throws {
        self.run = run
        random = SplitMix64(seed: run.seed)
        verbs = try VerbsPair()
        pool = try PagePool(pageCount: Self.poolPages)
        sink = PlainBuffer(pages: 1)
        sinkRegion = try verbs.domain.registerMemory(sink.bytes, access: .all)
        cache = MRCache(domain: verbs.domain, access: .localWrite, limits: run.configuration.limits,
                        isEnabled: run.configuration.isEnabled)
        invalidatedAt = Array(repeating: -1, count: Self.poolPages)
        fillRandom(UnsafeMutableRawBufferPointer(start: pool.baseAddress, count: pool.byteCount), seed: run.seed)
    }

    var base: UInt { UInt(bitPattern: pool.baseAddress) }

    func fail(_ message: String) {
        if failure == nil {
            failure = "\(run.testDescription), step \(log.count): \(message)\nlast steps:\n  "
                + log.suffix(12).joined(separator: "\n  ")
        }
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fail(message()) }
    }

    func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &random) }

    /// A random range inside the pool: 1 byte to 3 pages, any offset.
    func randomRange() -> MemoryRange {
        let length = int(0..<4) == 0 ? int(1..<64) : int(1..<3 * pageSize)
        let start = int(0..<Self.poolPages * pageSize - length)
        return MemoryRange(address: base + UInt(start), length: length)
    }

    func pages(of range: Range<UInt>) -> Range<Int> {
        let first = Int((range.lowerBound - base) >> 12)
        let end = Int((range.upperBound - base + pageMask) >> 12)
        return max(first, 0)..<min(end, Self.poolPages)
    }

    /// The model's reference count per lkey.
    var modelReferences: [UInt32: Int] {
        var result: [UInt32: Int] = [:]
        for holding in held { for lkey in holding.lkeys { result[lkey, default: 0] += 1 } }
        return result
    }

    /// Checks one answer of the cache for `range` at the current tick: the stale-lkey rule, a
    /// miss gives a new key and a hit an old one, and SoftVerbs accepts the key for the range.
    func checkResolution(_ resolution: KeyResolution, for range: MemoryRange, hit: Bool) {
        let lkey = resolution.lkey
        check(resolution.coverage.contains(range.address), "coverage \(resolution.coverage) misses 0x\(String(range.address, radix: 16))")
        check(resolution.coverage.lowerBound & pageMask == 0 && resolution.coverage.upperBound & pageMask == 0,
              "coverage \(resolution.coverage) is not page-aligned")
        if hit {
            check(run.configuration.isEnabled, "a disabled cache hit")
            check(seen[lkey] != nil, "a hit handed out lkey 0x\(String(lkey, radix: 16)), which no miss registered")
        } else {
            check(seen[lkey] == nil, "a miss handed out lkey 0x\(String(lkey, radix: 16)) again")
            seen[lkey] = (clock, resolution.coverage)
            lastRegistered = lkey
        }
        guard let registered = seen[lkey] else { return }
        for page in pages(of: resolution.coverage) where invalidatedAt[page] >= registered.registeredAt {
            fail("stale lkey 0x\(String(lkey, radix: 16)) (registered at tick \(registered.registeredAt)) handed out for "
                 + "\(range) although page \(page) was invalidated at tick \(invalidatedAt[page])")
        }
        let covered = min(range.length, Int(resolution.coverage.upperBound - range.address), pageSize)
        let status = probe(lkey: lkey, address: range.address, length: covered)
        check(status == .success, "SoftVerbs refused the lkey 0x\(String(lkey, radix: 16)) the cache handed out: \(status)")
    }

    /// Posts an RDMA WRITE of `length` bytes at `address` under `lkey` into the sink and
    /// returns its completion status, reconnecting the queue pairs after an error.
    func probe(lkey: UInt32, address: UInt, length: Int) -> WorkCompletionStatus {
        do {
            let id = nextProbeID
            nextProbeID += 1
            try verbs.send([sge(address, length, lkey)], id: id, opcode: .rdmaWrite,
                           remoteAddress: UInt64(sinkRegion.address), rkey: sinkRegion.rkey)
            let completions = try verbs.drain(verbs.senderQueue)
            guard completions.count == 1, let completion = completions.first, completion.id == id else {
                fail("probe \(id) completed as \(completions)")
                return .generalError
            }
            if completion.status != .success {
                try verbs.sender.modify(to: .reset, remote: nil)
                try verbs.receiver.modify(to: .reset, remote: nil)
                try SoftQueuePair.connect(verbs.sender, verbs.receiver)
            }
            return completion.status
        } catch {
            fail("probe failed to post: \(error)")
            return .generalError
        }
    }

    /// A lookup, with or without a reference.
    func lookup(retaining: Bool) {
        let range = randomRange()
        let before = cache.statistics
        clock += 1
        lookups += 1
        log.append("resolve(\(range), retaining: \(retaining))")
        do {
            let resolution = try cache.resolve(range, access: .localWrite, retaining: retaining)
            let after = cache.statistics
            let hit = after.hits == before.hits + 1
            check(hit != (after.misses == before.misses + 1), "one lookup counted \(after.hits - before.hits) hits, \(after.misses - before.misses) misses")
            check(hit || !registrationFaultArmed, "a miss registered although a registration failure was armed")
            checkResolution(resolution, for: range, hit: hit)
            if retaining { held.append(.lookup(lkey: resolution.lkey)) }
        } catch {
            expectInjectedFailure(error, statisticsBefore: before)
        }
    }

    /// An extraction of a two-segment IOVEC (pinned), holding its SGEs.
    func extract() {
        var segments = [randomRange(), randomRange()].map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: $0.address), iov_len: $0.length) }
        let before = cache.statistics
        let referencesBefore = cache.referenceCount
        let pinsBefore = ledger.pinnedPageCount
        clock += 1
        log.append("extract(\(segments.map { "\($0.iov_base!)+\($0.iov_len)" }))")
        segments.withUnsafeMutableBufferPointer { buffer in
            var iterator = try! IOIterator(iovecs: UnsafeBufferPointer(buffer), direction: .source)
            let ranges = remainingRanges(iterator)
            var sges: [SGE] = []
            do throws(RDMAError) {
                let bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 64, keys: cache, ledger: ledger)
                let after = cache.statistics
                lookups += after.hits + after.misses - before.hits - before.misses
                check(bytes == ranges.reduce(0) { $0 + $1.length }, "extracted \(bytes) bytes")
                check(after.misses == before.misses || !registrationFaultArmed, "a miss registered although a failure was armed")
                // Each SGE's key: registered after any invalidation of its memory, and accepted by SoftVerbs.
                for sge in sges {
                    guard let coverage = cache.coverage(lkey: sge.lkey), let registered = seen[sge.lkey] ?? newKey(sge.lkey, coverage) else {
                        fail("extraction handed out lkey 0x\(String(sge.lkey, radix: 16)), which the cache does not hold")
                        continue
                    }
                    check(coverage.contains(UInt(sge.address)) && UInt(sge.address) + UInt(sge.length) <= coverage.upperBound,
                          "SGE \(sge) is outside its region \(coverage)")
                    for page in pages(of: coverage) where invalidatedAt[page] >= registered.registeredAt {
                        fail("stale lkey 0x\(String(sge.lkey, radix: 16)) in an SGE for page \(page), invalidated at tick \(invalidatedAt[page])")
                    }
                    let status = probe(lkey: sge.lkey, address: UInt(sge.address), length: min(Int(sge.length), pageSize))
                    check(status == .success, "SoftVerbs refused the SGE \(sge): \(status)")
                }
                held.append(.extraction(sges: sges, iovecs: Array(buffer)))
            } catch {
                expectInjectedFailure(error, statisticsBefore: before)
                lookups += cache.statistics.hits + cache.statistics.misses - before.hits - before.misses
                check(sges.isEmpty && cache.referenceCount == referencesBefore && ledger.pinnedPageCount == pinsBefore,
                      "a failed extraction left a trace")
            }
        }
    }

    /// Records a key first seen in an extraction (a miss inside it registered it now).
    func newKey(_ lkey: UInt32, _ coverage: Range<UInt>) -> (registeredAt: Int, coverage: Range<UInt>)? {
        seen[lkey] = (clock, coverage)
        lastRegistered = lkey
        return seen[lkey]
    }

    func expectInjectedFailure(_ error: RDMAError, statisticsBefore before: MRCache<SoftProtectionDomain>.Statistics) {
        guard case .registrationFailed(let verbsError) = error, verbsError.errno == ENOMEM else {
            fail("unexpected error \(error)")
            return
        }
        check(registrationFaultArmed, "a registration failed with no failure armed: \(error)")
        check(cache.statistics.registrations == before.registrations, "a registration succeeded before the armed failure struck")
        registrationFaultArmed = false
        log.append("  -> failed as injected")
    }

    /// Releases one random holding.
    func release() {
        guard !held.isEmpty else { return }
        let holding = held.remove(at: int(0..<held.count))
        clock += 1
        switch holding {
        case .lookup(let lkey):
            log.append("release(0x\(String(lkey, radix: 16)))")
            cache.release(lkey: lkey)
        case .extraction(let sges, var iovecs):
            log.append("release(\(sges.count) SGEs)")
            iovecs.withUnsafeMutableBufferPointer { buffer in
                try! IOIterator(iovecs: UnsafeBufferPointer(buffer), direction: .source)
                    .release(extractedSGEs: sges, keys: cache, ledger: ledger)
            }
        }
    }

    /// Invalidates a random range (the memory is unmapped or about to be reused).
    func invalidate(_ range: MemoryRange? = nil) {
        let range = range ?? randomRange()
        clock += 1
        log.append("invalidate(\(range))")
        let lkeysBefore = liveKeys()
        cache.invalidate(range)
        let end = range.address + UInt(range.length)
        for page in pages(of: range.address..<end) { invalidatedAt[page] = clock }
        // Idle regions overlapping the range are gone at once, here and in SoftVerbs.
        let references = modelReferences
        for lkey in lkeysBefore where references[lkey] == nil {
            guard let coverage = seen[lkey]?.coverage, coverage.lowerBound < end && range.address < coverage.upperBound else { continue }
            check(cache.coverage(lkey: lkey) == nil, "idle lkey 0x\(String(lkey, radix: 16)) over \(coverage) survived invalidate(\(range))")
        }
    }

    /// Frees memory and reuses it at the same addresses: invalidate, new content, register again.
    func reuse() {
        let range = randomRange()
        log.append("reuse(\(range)):")
        invalidate(range)
        fillRandom(UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: range.address), count: range.length),
                   seed: random.next())
        let before = cache.statistics
        clock += 1
        lookups += 1
        do {
            let resolution = try cache.resolve(range, access: .localWrite, retaining: true)
            check(cache.statistics.misses == before.misses + 1, "reused memory hit a region registered before it was freed")
            checkResolution(resolution, for: range, hit: false)
            held.append(.lookup(lkey: resolution.lkey))
        } catch {
            expectInjectedFailure(error, statisticsBefore: before)
        }
    }

    /// Probes a key the cache dropped (SoftVerbs must refuse it) and one it holds (accepted).
    func probeKeys() {
        let live = Set(liveKeys())
        let stale = seen.keys.filter { !live.contains($0) }.sorted()
        if !stale.isEmpty {
            let lkey = stale[int(0..<stale.count)]
            let coverage = seen[lkey]!.coverage
            log.append("probe stale 0x\(String(lkey, radix: 16))")
            let status = probe(lkey: lkey, address: coverage.lowerBound, length: min(pageSize, coverage.count))
            check(status == .localProtectionError, "SoftVerbs accepted stale lkey 0x\(String(lkey, radix: 16)): \(status)")
        }
        if !live.isEmpty {
            let lkeys = live.sorted()
            let lkey = lkeys[int(0..<lkeys.count)]
            let coverage = cache.coverage(lkey: lkey)!
            log.append("probe live 0x\(String(lkey, radix: 16))")
            let status = probe(lkey: lkey, address: coverage.lowerBound, length: min(pageSize, coverage.count))
            check(status == .success, "SoftVerbs refused live lkey 0x\(String(lkey, radix: 16)): \(status)")
        }
    }

    func flush() {
        clock += 1
        log.append("flush()")
        cache.flush()
        let references = modelReferences
        for lkey in liveKeys() {
            check(references[lkey] != nil, "idle lkey 0x\(String(lkey, radix: 16)) survived flush()")
        }
    }

    func armRegistrationFailure() {
        log.append("inject(.registration(nth: 1))")
        if !registrationFaultArmed { verbs.device.inject(.registration(nth: 1)) }
        registrationFaultArmed = true
    }

    /// The keys the cache holds now.
    func liveKeys() -> [UInt32] { seen.keys.filter { cache.coverage(lkey: $0) != nil } }

    /// The invariants that hold between any two steps.
    func checkInvariants() {
        let statistics = cache.statistics
        check(statistics.hits + statistics.misses == lookups,
              "hits \(statistics.hits) + misses \(statistics.misses) != lookups \(lookups)")
        check(statistics.registrations - statistics.deregistrations == cache.regionCount,
              "registrations \(statistics.registrations) - deregistrations \(statistics.deregistrations) != regions \(cache.regionCount)")
        check(cache.regionCount == verbs.device.registeredRegionCount - 1,
              "the cache holds \(cache.regionCount) regions, SoftVerbs \(verbs.device.registeredRegionCount - 1)")
        check(statistics.registrations == seen.count, "\(statistics.registrations) registrations, \(seen.count) keys handed out")
        let live = liveKeys()
        check(live.count == cache.regionCount, "the cache holds regions whose keys it never handed out")
        check(live.reduce(0) { $0 + (cache.coverage(lkey: $1)?.count ?? 0) } == cache.registeredBytes,
              "registered bytes \(cache.registeredBytes) are not the sum of the regions")
        let references = modelReferences
        check(cache.referenceCount == references.values.reduce(0, +),
              "the cache counts \(cache.referenceCount) references, the test holds \(references.values.reduce(0, +))")
        for (lkey, count) in references {
            check(cache.references(lkey: lkey) == count, "lkey 0x\(String(lkey, radix: 16)) has \(cache.references(lkey: lkey) ?? -1) references, expected \(count)")
        }
        // Over the limits, the only idle region may be the one just registered (spared by its lookup).
        let limits = run.configuration.limits
        if cache.regionCount > limits.maxRegions || cache.registeredBytes > limits.maxBytes {
            for lkey in live where cache.references(lkey: lkey) == 0 && lkey != lastRegistered {
                fail("over the limits (\(cache.regionCount) regions, \(cache.registeredBytes) bytes) with idle lkey 0x\(String(lkey, radix: 16))")
            }
        }
        if !run.configuration.isEnabled { check(statistics.hits == 0, "a disabled cache counted hits") }
    }

    func step() {
        switch int(0..<100) {
        case 0..<28: lookup(retaining: true)
        case 28..<38: lookup(retaining: false)
        case 38..<50: extract()
        case 50..<72: release()
        case 72..<80: invalidate()
        case 80..<90: reuse()
        case 90..<95: probeKeys()
        case 95..<97: armRegistrationFailure()
        default: flush()
        }
        checkInvariants()
    }

    /// Releases everything, flushes, and checks that nothing stays registered.
    func finish() {
        while !held.isEmpty { release() }
        flush()
        checkInvariants()
        check(cache.referenceCount == 0 && cache.regionCount == 0 && cache.registeredBytes == 0,
              "after release and flush the cache holds \(cache.regionCount) regions")
        check(ledger.isEmpty, "\(ledger.pinnedPageCount) pins remain")
        check(verbs.device.registeredRegionCount == 1, "SoftVerbs holds \(verbs.device.registeredRegionCount - 1) of the cache's regions")
        // Every key the cache ever handed out is dead now.
        for lkey in seen.keys.sorted().prefix(8) {
            let coverage = seen[lkey]!.coverage
            let status = probe(lkey: lkey, address: coverage.lowerBound, length: min(pageSize, coverage.count))
            check(status == .localProtectionError, "SoftVerbs accepted lkey 0x\(String(lkey, radix: 16)) after the flush: \(status)")
        }
        try? sinkRegion.deregister()
        check(verbs.device.registeredRegionCount == 0, "regions remain registered in SoftVerbs")
    }
}
