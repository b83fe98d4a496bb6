#if RDMA
import Glibc
import IterExtract
import IBVerbs
import RDMASGE

/// Memory that goes away under an MR cache and comes back at the same address with
/// other pages behind it. A device keeps the pages a registration pinned, so a cache
/// that hands out the old region makes the device move the old bytes: each case writes
/// the buffer to the target through the cache, replaces the memory behind the buffer's
/// addresses, writes again, and reports what arrived.
struct StaleMemoryCases<Device: VerbsDevice> {
    /// How the memory behind the buffer is replaced between the two writes.
    enum Replacement: String, CaseIterable {
        /// `munmap`, then `mmap` at the same address.
        case remap = "munmap + mmap at the same address"
        /// `madvise(MADV_DONTNEED)`: the next write faults in fresh pages (how `free` trims).
        case dontNeed = "madvise(MADV_DONTNEED)"
    }

    /// What one case saw.
    struct Outcome {
        /// Whether the second write carried the bytes written after the replacement.
        var newBytesArrived: Bool
        /// The first byte of the target after the second write.
        var arrived: UInt8
        /// Whether the second lookup registered anew (a miss) rather than hit the old region.
        var registeredAgain: Bool
    }

    let device: Device
    let domain: Device.Domain
    let buffers: Buffers<Device.Domain>

    func run(_ replacement: Replacement, pages: Int = 4) throws -> Outcome {
        let length = pages * pageSize
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED else { throw Failure("mmap of \(pages) pages failed") }
        var mapped = base
        defer { munmap(mapped, length) }
        let rig = try Rig<Device>(device: device, domain: domain)
        defer { try? rig.close() }
        let cache = MRCache(domain: domain, access: .localWrite)
        defer { cache.flush() }

        memset(base, 0xA1, length)
        try write(base, length: length, through: cache, rig: rig)
        guard buffers.target.bytes[0] == 0xA1 else { throw Failure("the first write did not arrive") }
        let registrations = cache.statistics.registrations

        switch replacement {
        case .remap:
            munmap(base, length)
            guard let again = mmap(base, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
                  again != MAP_FAILED else { mapped = base; throw Failure("mmap at the old address failed") }
            mapped = again
            guard again == base else { throw Failure("the kernel placed the new mapping elsewhere") }
        case .dontNeed:
            guard madvise(base, length, MADV_DONTNEED) == 0 else { throw Failure("madvise failed: errno \(errno)") }
        }
        memset(base, 0xB2, length)
        try write(base, length: length, through: cache, rig: rig)
        let arrived = buffers.target.bytes[0]
        let allNew = buffers.target.bytes[0..<length].allSatisfy { $0 == 0xB2 }
        return Outcome(newBytesArrived: allNew, arrived: arrived,
                       registeredAgain: cache.statistics.registrations > registrations)
    }

    /// RDMA-WRITEs `length` bytes at `base` to the start of the target, keys from
    /// `cache`; completing the plan releases what it retained.
    private func write(_ base: UnsafeMutableRawPointer, length: Int, through cache: MRCache<Device.Domain>, rig: Rig<Device>) throws {
        let plan = WorkRequestPlan(requestCapacity: 1, limits: WorkRequestPlan.Limits(maxSGEs: 16, maxMessageSize: length))
        var iterator = IOIterator(source: UnsafeRawBufferPointer(start: base, count: length))
        try plan.build(from: &iterator, operation: .rdmaWrite(
            remoteAddress: UInt64(buffers.targetRegion.address), rkey: buffers.targetRegion.rkey), keys: cache)
        try plan.post(on: rig.a, signaling: .every)
        let status = try plan.complete(polling: rig.aQueue)
        guard status == .success else { throw Failure("the write completed with \(status)") }
    }
}

extension Suite {
    /// The stale-memory cases on the device, where the pages a stale region pinned are
    /// really other pages than the buffer's (SoftVerbs copies by address, so it cannot tell).
    func staleMemoryCases(ib: IBVerbsProtectionDomain) throws {
        let buffers = try Buffers(domain: ib, source: source, target: target)
        defer { try? buffers.close() }
        let cases = StaleMemoryCases(device: device, domain: ib, buffers: buffers)
        for replacement in StaleMemoryCases<IBVerbs>.Replacement.allCases {
            report.attempt("MR cache after \(replacement.rawValue)") {
                let outcome = try cases.run(replacement)
                report.check(outcome.newBytesArrived && outcome.registeredAgain,
                             "MR cache on \(device.name) after \(replacement.rawValue) under a cached region: "
                             + (outcome.newBytesArrived ? "the new bytes arrived" : "STALE: 0x\(String(outcome.arrived, radix: 16)) arrived, not 0xb2")
                             + (outcome.registeredAgain ? ", registered again" : ", the old region was reused"))
            }
        }
    }
}
#endif
