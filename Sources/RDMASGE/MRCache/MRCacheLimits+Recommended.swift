#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MRCache.Limits {
    /// The most idle regions ``recommended`` keeps: 1,024, libfabric's default
    /// (`FI_MR_CACHE_MAX_COUNT`).
    public static var recommendedMaxRegions: Int { 1024 }

    /// The most idle bytes ``recommended`` keeps when pinned memory is not limited: 1 GiB.
    public static var recommendedMaxBytes: Int { 1 << 30 }

    /// Limits for a cache whose owner has not sized it: at most
    /// ``recommendedMaxRegions`` regions, and at most half of what `RLIMIT_MEMLOCK`
    /// lets the process pin (registered memory counts against it; the other half is
    /// left for regions in use and for the program's own registrations), or
    /// ``recommendedMaxBytes`` when that limit is infinite or does not apply (root,
    /// whose `CAP_IPC_LOCK` lifts it).
    ///
    /// The limits bound idle regions, kept for reuse: regions in use may exceed them.
    /// To size a cache, give it room for the buffers the program reuses (its working
    /// set) and no more: `maxBytes` a little over the bytes of the buffers in flight
    /// at once, `maxRegions` over their count. A cache too small registers again on
    /// reuse (``MRCacheStatistics/misses`` grows with the same buffers); one too large
    /// keeps freed memory pinned until something evicts or invalidates it.
    public static var recommended: Self {
        var limit = rlimit()
        let limited = geteuid() != 0 && getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0
            && limit.rlim_cur != rlim_t.max
        let maxBytes = limited ? min(Int(clamping: limit.rlim_cur) / 2, recommendedMaxBytes) : recommendedMaxBytes
        return Self(maxRegions: recommendedMaxRegions, maxBytes: maxBytes)
    }
}
