#if RDMA
import Glibc
import IterExtract
import RDMASGE

/// What an MR-cache hit saves: `count` hits on a warm cache (one retaining lookup and
/// one release of the same `size` bytes, 64 KiB by default) against `count`
/// registrations of those bytes through a disabled cache (`ibv_reg_mr` and
/// `ibv_dereg_mr` each, on libibverbs), the pair the `mrcache-hit/64KiB` and
/// `mrcache-register/64KiB` benchmarks time on SoftVerbs.
struct CacheTiming {
    /// The bytes looked up and registered.
    var size: Int
    var count: Int
    var hitSeconds: Double
    var registrationSeconds: Double
    /// The warm cache's hits, and the disabled cache's registrations and deregistrations.
    var hits = 0, registrations = 0, deregistrations = 0
    /// Regions the two caches still hold after their last release, beyond the warm one.
    var regionsLeft = 0

    var hitNanoseconds: Double { hitSeconds / Double(count) * 1e9 }
    var registrationNanoseconds: Double { registrationSeconds / Double(count) * 1e9 }
    /// How many hits one registration costs.
    var ratio: Double { registrationSeconds / hitSeconds }

    static func measure<Domain: ProtectionDomain>(in domain: Domain, count: Int, size: Int = 64 << 10) throws -> CacheTiming {
        let pool = try PagePool(pageCount: size / pageSize)
        let range = MemoryRange(address: UInt(bitPattern: pool.baseAddress), length: size)
        let cache = MRCache(domain: domain, access: .localWrite)
        defer { cache.flush() }
        let uncached = MRCache(domain: domain, access: .localWrite, isEnabled: false)
        // Untimed rounds first: the first registers the warm cache's region, and all of
        // them let the code settle (an emulator such as qemu's TCG translates it on its
        // first runs, which would otherwise be charged to the timed loop).
        let warmUp = max(count / 10, 1)
        try lookUp(range, times: warmUp, in: cache)
        try lookUp(range, times: warmUp, in: uncached)
        let before = (hits: cache.statistics.hits, uncached: uncached.statistics)

        let hitStart = now()
        try lookUp(range, times: count, in: cache)
        let hitSeconds = now() - hitStart
        let registrationStart = now()
        try lookUp(range, times: count, in: uncached)
        let registrationSeconds = now() - registrationStart

        var timing = CacheTiming(size: size, count: count, hitSeconds: hitSeconds, registrationSeconds: registrationSeconds)
        timing.hits = cache.statistics.hits - before.hits
        timing.registrations = uncached.statistics.registrations - before.uncached.registrations
        timing.deregistrations = uncached.statistics.deregistrations - before.uncached.deregistrations
        timing.regionsLeft = cache.regionCount - 1 + uncached.regionCount
        return timing
    }

    /// `times` retaining lookups of `range` in `cache`, each released at once.
    private static func lookUp<Domain>(_ range: MemoryRange, times: Int, in cache: MRCache<Domain>) throws {
        for _ in 0..<times { cache.release(lkey: try cache.resolve(range, access: .localWrite, retaining: true).lkey) }
    }

    /// The `errno` with which registering a page that is not mapped fails in `domain`,
    /// or `nil` when the registration succeeds (`ibv_reg_mr` cannot pin such a page: `EFAULT`).
    static func unmappedRegistrationErrno<Domain: ProtectionDomain>(in domain: Domain) throws -> Int32? {
        guard let page = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), page != MAP_FAILED else {
            throw Failure("mmap of one page failed")
        }
        munmap(page, pageSize)
        do throws(VerbsError) {
            let region = try domain.registerMemory(address: UInt(bitPattern: page), length: pageSize, access: .localWrite)
            try region.deregister()
            return nil
        } catch {
            return error.errno
        }
    }
}
#endif
