import Glibc
import IterExtract
import RDMASGE
import TestKit
import Testing
import SoftVerbs

// MR cache under churn (issue 8): seeded random sequences of lookups with and without a
// reference, extractions, releases, invalidations, "free and reuse the memory at the
// same addresses", flushes and failing registrations, checked after every step against
// a model and against the SoftVerbs device itself.
//
// Reproduce: `swift test --filter MRCacheChurn` (every failure names its seed, configuration,
// step and the operations that led there); `ITEREXTRACT_CHURN_SEED=0x… swift test --filter
// MRCacheChurn` runs that one seed under every configuration.

/// How the cache under churn is set up.
enum ChurnConfiguration: String, CaseIterable, Sendable {
    /// No limits: idle regions stay until invalidated or flushed.
    case unlimited
    /// At most 4 regions and 48 KiB while idle: eviction all the time.
    case tight
    /// A disabled cache: every lookup registers.
    case disabled

    var limits: MRCache<SoftProtectionDomain>.Limits {
        switch self {
        case .unlimited: .init()
        case .tight: .init(maxRegions: 4, maxBytes: 48 << 10)
        case .disabled: .init()
        }
    }
    var isEnabled: Bool { self != .disabled }
}

struct ChurnRun: Sendable, CustomTestStringConvertible {
    var seed: UInt64
    var configuration: ChurnConfiguration
    var testDescription: String { "\(configuration) seed 0x\(String(seed, radix: 16))" }

    /// The committed seeds, or only `ITEREXTRACT_CHURN_SEED` (hex, as failures print it) when set.
    static let seeds: [UInt64] = {
        if let text = getenv("ITEREXTRACT_CHURN_SEED").map({ String(cString: $0) }) {
            let digits = text.hasPrefix("0x") ? String(text.dropFirst(2)) : text
            if let seed = UInt64(digits, radix: 16) { return [seed] }
        }
        return [0xC0FFEE, 0xBADC0DE, 0x5EED_0001, 0x5EED_0002, 0xDEAD_BEEF, 0x1234_5678]
    }()
    static let all: [ChurnRun] = ChurnConfiguration.allCases.flatMap { configuration in
        seeds.map { ChurnRun(seed: $0, configuration: configuration) }
    }
}

@Suite("MR cache under churn")
struct MRCacheChurnTests {
    @Test("random register / release / invalidate / reuse sequences never hand out a stale lkey",
          arguments: ChurnRun.all)
    func churn(_ run: ChurnRun) throws {
        let churn = try Churn(run)
        for _ in 0..<Churn.steps where churn.failure == nil { churn.step() }
        if churn.failure == nil { churn.finish() }
        if let failure = churn.failure {
            Issue.record(Comment(rawValue: failure))
            return
        }

        // The run must have exercised what it claims to (else the seed or weights are wrong).
        let statistics = churn.cache.statistics
        #expect(statistics.misses > 20 && statistics.registrations > 20, "\(run.testDescription): \(statistics)")
        #expect(statistics.invalidations > 0, "\(run.testDescription): \(statistics)")
        if run.configuration.isEnabled { #expect(statistics.hits > 0, "\(run.testDescription): \(statistics)") }
        if run.configuration == .tight { #expect(statistics.evictions > 0, "\(run.testDescription): \(statistics)") }
    }

    @Test("the churn checker catches a stale lkey (a cache that ignores invalidation is caught)")
    func checkerCatchesStaleKeys() throws {
        // The model, fed a hand-made history, must call an lkey stale: registered at tick 1,
        // its page invalidated at tick 2, handed out at tick 3.
        let churn = try Churn(ChurnRun(seed: 1, configuration: .unlimited))
        let range = MemoryRange(address: churn.base + 100, length: 10)
        churn.clock = 1
        let resolution = try churn.cache.resolve(range, access: .localWrite, retaining: false)
        churn.lookups += 1
        churn.checkResolution(resolution, for: range, hit: false)
        #expect(churn.failure == nil)
        churn.clock = 2
        churn.invalidatedAt[0] = 2  // the model thinks page 0 was invalidated; the cache was not told
        churn.clock = 3
        let again = try churn.cache.resolve(range, access: .localWrite, retaining: false)
        churn.checkResolution(again, for: range, hit: true)
        #expect(churn.failure?.contains("stale lkey") == true)
    }
}
