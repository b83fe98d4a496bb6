import IterExtract
import RDMASGE
import SoftVerbs

/// Registers the iterator's memory through an MR cache on SoftVerbs, extracts SGEs
/// call by call, prints them, then builds and prints the work-request plan that an
/// RDMA WRITE of the same bytes would post.
func printSGEExtraction(
    _ iterator: inout IOIterator, maxSGEs: Int, maxSize: Int, reservedSGEs: Int, maxMessageSize: Int
) throws(RDMAError) {
    let device = SoftVerbs()
    let domain: SoftProtectionDomain
    do { domain = try device.allocateProtectionDomain() } catch { throw .registrationFailed(error) }
    defer { try? domain.close() }
    let cache = MRCache(domain: domain, access: [.localWrite, .remoteRead])
    let ledger = PinLedger(mode: .exact)
    let start = iterator
    var sges: [SGE] = []
    sges.reserveCapacity(maxSGEs)
    print("call  sge  address           length  lkey")
    var calls = 0
    var bytes = 0
    var count = 0
    while iterator.count > 0 {
        sges.removeAll(keepingCapacity: true)
        let described = try iterator.extract(maxSize: maxSize, into: &sges, maxSGEs: maxSGEs, keys: cache, ledger: ledger)
        if described == 0 { break }
        calls += 1
        for (i, sge) in sges.enumerated() {
            print("\(pad(calls, 4))  \(pad(i, 3))  \(hex(sge.address).padding(toLength: 16, withPad: " ", startingAt: 0))  \(pad(sge.length, 6))  \(hex(sge.lkey))")
        }
        bytes += described
        count += sges.count
        iterator.release(extractedSGEs: sges, keys: cache, ledger: ledger)
    }
    let statistics = cache.statistics
    print("total: \(bytes) bytes in \(count) SGEs over \(calls) calls (retention released after each); MR cache: \(statistics.registrations) registrations, "
          + "\(statistics.hits) hits, \(statistics.misses) misses; pins held: \(ledger.pinnedPageCount)")

    var again = start
    let limits = WorkRequestPlan.Limits(maxSGEs: maxSGEs, reservedSGEs: reservedSGEs, maxMessageSize: maxMessageSize)
    let plan = WorkRequestPlan(requestCapacity: 4096, limits: limits)
    defer { plan.release() }
    let planned = try plan.build(from: &again, operation: .rdmaWrite(remoteAddress: 0x1_0000_0000, rkey: 0x1234),
                                 keys: cache, ledger: ledger)
    print("work-request plan (RDMA WRITE, \(maxSGEs) SGEs a request, \(reservedSGEs) reserved, \(maxMessageSize) bytes at most):")
    print("  wr  sges   bytes  remote address")
    for (i, request) in plan.requests.enumerated() {
        print("\(pad(i, 4))  \(pad(request.sges.count, 4))  \(pad(request.byteCount, 6))  \(hex(request.remoteAddress))")
    }
    print("plan: \(planned) bytes in \(plan.requests.count) work requests")
}
