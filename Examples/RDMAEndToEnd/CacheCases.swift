#if RDMA
import IterExtract
import RDMASGE

/// The MR cache over a backend's real registration: an IOVEC of 16 separate 4 KiB
/// buffers is extracted and written twice through one cache, then the memory is
/// invalidated and a request carrying a key from before must fail.
struct CacheCases<Device: VerbsDevice> {
    let device: Device
    let domain: Device.Domain
    let buffers: Buffers<Device.Domain>

    func run(segments: Int) throws -> CacheResult {
        let memory = try SeparateBuffers(count: segments)
        let rig = try Rig<Device>(device: device, domain: domain)
        defer { try? rig.close() }
        let cache = MRCache(domain: domain, access: .localWrite)
        defer { cache.flush() }
        let plan = WorkRequestPlan(requestCapacity: 1, limits: WorkRequestPlan.Limits(maxSGEs: 16, maxMessageSize: 64 << 10))
        var result = CacheResult()
        var staleSGEs: [SGE] = []
        for pass in 0..<2 {
            var iterator = memory.iterator()
            try plan.build(from: &iterator, operation: .rdmaWrite(
                remoteAddress: UInt64(buffers.targetRegion.address), rkey: buffers.targetRegion.rkey), keys: cache)
            staleSGEs = Array(plan.requests[0].sges)
            try plan.post(on: rig.a, signaling: .every)
            let status = try plan.complete(polling: rig.aQueue)
            guard status == .success else { throw Failure("pass \(pass) completed with \(status)") }
            let counts = CacheResult.Counts(cache.statistics)
            if pass == 0 { result.firstPass = counts } else { result.secondPass = counts }
        }
        for i in 0..<segments {
            let written = buffers.target.bytes[(i * 4096)..<((i + 1) * 4096)]
            guard written.allSatisfy({ $0 == UInt8(i + 1) }) else { throw Failure("segment \(i) did not arrive") }
        }
        cache.invalidate(memory.range)
        result.afterInvalidation = CacheResult.Counts(cache.statistics)
        result.regionsAfterInvalidation = cache.regionCount
        try rig.post(staleSGEs, on: rig.a, id: 99, opcode: .rdmaWrite,
                     remoteAddress: UInt64(buffers.targetRegion.address), rkey: buffers.targetRegion.rkey)
        result.staleKeyStatus = "\(try rig.drain(rig.aQueue, count: 1, seconds: 30)[0].status)"
        return result
    }
}
/// What the MR cache scenario saw, the same on every backend.
struct CacheResult: Equatable {
    /// The cache's counters at one point.
    struct Counts: Equatable {
        var hits = 0, misses = 0, registrations = 0, deregistrations = 0, invalidations = 0

        init() {}
        init(_ statistics: MRCacheStatistics) {
            hits = statistics.hits
            misses = statistics.misses
            registrations = statistics.registrations
            deregistrations = statistics.deregistrations
            invalidations = statistics.invalidations
        }
    }

    var firstPass = Counts()
    var secondPass = Counts()
    var afterInvalidation = Counts()
    var regionsAfterInvalidation = 0
    var staleKeyStatus = ""
}
#endif
