import Glibc
import RDMASGE
import SoftVerbs
import Testing

@Suite("MR cache limits")
struct MRCacheLimitsTests {
    typealias Limits = MRCache<SoftProtectionDomain>.Limits

    @Test("the recommended limits are bounded: 1,024 regions, and at most 1 GiB or half of RLIMIT_MEMLOCK")
    func recommended() {
        let limits = Limits.recommended
        #expect(limits.maxRegions == 1024)
        #expect(limits.maxBytes > 0 && limits.maxBytes <= 1 << 30)
        var memlock = rlimit()
        if geteuid() != 0, getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &memlock) == 0, memlock.rlim_cur != rlim_t.max {
            #expect(limits.maxBytes <= Int(memlock.rlim_cur) / 2)
        }
    }

    @Test("a cache made without limits takes the recommended ones; Limits() means none")
    func defaults() throws {
        let domain = try SoftVerbs().allocateProtectionDomain()
        #expect(MRCache(domain: domain).limits == .recommended)
        #expect(Limits() == Limits(maxRegions: .max, maxBytes: .max))
    }
}
