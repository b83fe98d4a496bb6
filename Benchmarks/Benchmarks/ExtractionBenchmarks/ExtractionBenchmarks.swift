import Benchmark
import CBaseline
import Glibc
import IterExtract
import RDMASGE
import ScatterList
import SoftVerbs

/// Each benchmark extracts a whole workload once per iteration into storage made
/// before the measured region. Names are `path/workload`; `Benchmarks/report` turns one
/// run into ratios (direct against two-step, against the C loop and the memcpy floor)
/// and checks that no direct path allocates.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        maxDuration: .seconds(1),
        maxIterations: 10_000
    )
    let workloads = try! Workload.all()
    // A counting ledger costs one atomic add per call: the mode for hot paths.
    let ledger = PinLedger(mode: .counting)
    let lkey: UInt32 = 0x1234

    // The harness's own allocations per sample: subtract these from every other row.
    Benchmark("baseline/empty") { benchmark in
        var pages: [Page] = []
        pages.reserveCapacity(64)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(pages) }
    }

    // Each row times one call per sample, so that its allocation count per call is exact;
    // its time then includes the harness's floor (`baseline/empty`, 100–210 ns here) and
    // a start from state the harness disturbed. The workloads the targets name run again
    // as `steady-` rows: 1,000 calls per sample, reported per call (steady state).
    let steady = Benchmark.Configuration(scalingFactor: .kilo)
    let steadyWorkloads: Set = ["IOVEC-256", "BVEC-256", "IOVEC-1024"]
    let variants = workloads.map { ($0, "", Benchmark.defaultConfiguration) }
        + workloads.filter { steadyWorkloads.contains($0.name) }.map { ($0, "steady-", steady) }
    for (workload, prefix, configuration) in variants {
        Benchmark("\(prefix)pages/\(workload.name)", configuration: configuration) { benchmark in
            var pages: [Page] = []
            pages.reserveCapacity(64)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var iterator = workload.makeIterator()
                while iterator.count > 0 {
                    pages.removeAll(keepingCapacity: true)
                    let result = try iterator.extractPages(into: &pages, maxPages: 64, maxSize: .max, ledger: ledger)
                    iterator.release(extractedPages: pages, ledger: ledger)
                    if result.byteCount == 0 { break }
                }
                blackHole(pages)
            }
        }

        for (path, granularity) in [("sg", ScatterGranularity.kernel), ("sg-merged", .merged(maxSegment: 1 << 16))] {
            Benchmark("\(prefix)\(path)/\(workload.name)", configuration: configuration) { benchmark in
                let table = ScatterTable(reservingCapacity: 256)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    var iterator = workload.makeIterator()
                    while iterator.count > 0 {
                        let bytes = try iterator.extract(maxSize: .max, into: table, maxEntries: 256,
                                                         granularity: granularity, ledger: ledger)
                        table.releasePins(ledger: ledger)
                        table.removeAll()
                        if bytes == 0 { break }
                    }
                }
            }
        }

        // The old way: pages first, then a table built from them.
        Benchmark("\(prefix)sg-two-step/\(workload.name)", configuration: configuration) { benchmark in
            let table = ScatterTable(reservingCapacity: 256)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var iterator = workload.makeIterator()
                while iterator.count > 0 {
                    let bytes = try iterator.extractThroughPages(maxSize: .max, into: table, maxPages: 256, ledger: ledger)
                    table.releasePins(ledger: ledger)
                    table.removeAll()
                    if bytes == 0 { break }
                }
            }
        }

        let singleKey = SingleKeyResolver(lkey: lkey, coverage: workload.coverage, access: [.localWrite, .remoteRead])
        Benchmark("\(prefix)sge/\(workload.name)", configuration: configuration) { benchmark in
            var sges: [SGE] = []
            sges.reserveCapacity(1024)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var iterator = workload.makeIterator()
                while iterator.count > 0 {
                    sges.removeAll(keepingCapacity: true)
                    let bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1024, keys: singleKey, ledger: ledger)
                    iterator.release(extractedSGEs: sges, keys: singleKey, ledger: ledger)
                    if bytes == 0 { break }
                }
                blackHole(sges)
            }
        }

        Benchmark("\(prefix)sge-mrcache/\(workload.name)", configuration: configuration) { benchmark in
            let device = SoftVerbs()
            let domain = try device.allocateProtectionDomain()
            let cache = MRCache(domain: domain, access: [.localWrite, .remoteRead])
            var sges: [SGE] = []
            sges.reserveCapacity(1024)
            func extractAll() throws {
                var iterator = workload.makeIterator()
                while iterator.count > 0 {
                    sges.removeAll(keepingCapacity: true)
                    let bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1024, keys: cache, ledger: ledger)
                    iterator.release(extractedSGEs: sges, keys: cache, ledger: ledger)
                    if bytes == 0 { break }
                }
            }
            try extractAll()   // a warm cache: every region is registered before measuring
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { try extractAll() }
            benchmark.stopMeasurement()
            cache.flush()
            try domain.close()
        }

        // The old way to SGEs: pages, then a table, then one SGE per table entry.
        Benchmark("\(prefix)sge-two-step/\(workload.name)", configuration: configuration) { benchmark in
            let table = ScatterTable(reservingCapacity: 256)
            var sges: [SGE] = []
            sges.reserveCapacity(1024)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var iterator = workload.makeIterator()
                while iterator.count > 0 {
                    let bytes = try iterator.extractThroughPages(maxSize: .max, into: table, maxPages: 256, ledger: ledger)
                    sges.removeAll(keepingCapacity: true)
                    for entry in table {
                        sges.append(SGE(address: UInt64(entry.address), length: UInt32(entry.length), lkey: lkey))
                    }
                    table.releasePins(ledger: ledger)
                    table.removeAll()
                    if bytes == 0 { break }
                }
                blackHole(sges)
            }
        }
    }

    signingBenchmarks(bvec: workloads.first { $0.name == "BVEC-256" }!, ledger: ledger)

    // One 64 KiB range looked up in an MR cache and released: a hit on a warm cache, and a
    // registration (a disabled cache registers on every lookup and deregisters on release).
    // Steady state: a thousand lookups per sample, each row reported per lookup (scaled,
    // marked `*`), as one lookup is too short to time alone.
    for (path, enabled) in [("mrcache-hit", true), ("mrcache-register", false)] {
        Benchmark("\(path)/64KiB", configuration: steady) { benchmark in
            let device = SoftVerbs()
            let domain = try device.allocateProtectionDomain()
            let pool = try PagePool(pageCount: 16)
            let cache = MRCache(domain: domain, access: [.localWrite, .remoteRead], isEnabled: enabled)
            let range = MemoryRange(address: UInt(bitPattern: pool.baseAddress), length: 1 << 16)
            // Warm: the region registered (a hit), the device's tables in use (a registration).
            cache.release(lkey: try cache.resolve(range, access: .localWrite, retaining: true).lkey)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let resolution = try cache.resolve(range, access: .localWrite, retaining: true)
                cache.release(lkey: resolution.lkey)
            }
            benchmark.stopMeasurement()
            cache.flush()
            try domain.close()
        }
    }

    // 64 RDMA WRITEs of 64 bytes posted as one chain (one `ibv_post_send`, one doorbell)
    // against 64 single posts, on SoftVerbs, their completions polled: what a chain saves
    // per request (`WorkRequestPlan.post` chains). Not gated: printed as a ratio.
    for (path, chained) in [("post-chain", true), ("post-single", false)] {
        Benchmark("\(path)/64-writes") { benchmark in
            let device = SoftVerbs()
            let domain = try device.allocateProtectionDomain()
            let queue = try domain.createCompletionQueue(capacity: 512)
            let capabilities = QueuePairCapabilities(maxSendWorkRequests: 128, maxReceiveWorkRequests: 1, maxSendSGEs: 1, maxReceiveSGEs: 1)
            let sender = try domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue, capabilities: capabilities)
            let receiver = try domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue, capabilities: capabilities)
            try SoftQueuePair.connect(sender, receiver)
            let pool = try PagePool(pageCount: 2)
            let base = UInt(bitPattern: pool.baseAddress)
            let region = try domain.registerMemory(address: base, length: 2 * pageSize, access: .all)
            var sge = SGE(address: UInt64(base), length: 64, lkey: region.lkey)
            try withUnsafePointer(to: &sge) { sge in
                let requests = (0..<64).map {
                    SendWorkRequest(id: UInt64($0), opcode: .rdmaWrite, sges: UnsafeBufferPointer(start: sge, count: 1),
                                    remoteAddress: UInt64(base) + UInt64(pageSize), rkey: region.rkey)
                }
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    if chained {
                        try requests.withUnsafeBufferPointer { try sender.postSend(chain: $0) }
                    } else {
                        for request in requests { try sender.postSend(request) }
                    }
                    var left = requests.count
                    while left > 0 { if try queue.poll() != nil { left -= 1 } }
                }
                benchmark.stopMeasurement()
            }
            try sender.close()
            try receiver.close()
            try queue.close()
            try region.deregister()
            try domain.close()
        }
    }

    // Lower bounds for the IOVEC-1024 row: the C loop a programmer writes by hand, and
    // copying the output array's bytes (the memory-traffic floor).
    let iovec1024 = workloads.first { $0.name == "IOVEC-1024" }!
    let singleKey1024 = SingleKeyResolver(lkey: lkey, coverage: iovec1024.coverage, access: [.localWrite, .remoteRead])
    for (prefix, configuration) in [("", Benchmark.defaultConfiguration), ("steady-", steady)] {
        Benchmark("\(prefix)c-loop/IOVEC-1024", configuration: configuration) { benchmark in
            let output = UnsafeMutableBufferPointer<baseline_sge>.allocate(capacity: 1024)
            defer { output.deallocate() }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(baseline_iovec_to_sge(baselineIOVecs(iovec1024.segments), 1024, output.baseAddress, 1024, lkey))
            }
        }
        // The C loop again with the checks extraction makes (byte limit, empty segments,
        // wrap, the key's coverage, merging, pages counted for pins): the same SGEs, checked
        // once here, so that the difference to the plain loop is the contract's cost.
        Benchmark("\(prefix)c-loop-checked/IOVEC-1024", configuration: configuration) { benchmark in
            let output = UnsafeMutableBufferPointer<baseline_sge>.allocate(capacity: 1024)
            defer { output.deallocate() }
            let coverage = iovec1024.coverage
            var bytes = 0
            var pages = 0
            func convert() -> Int {
                baseline_iovec_to_sge_checked(baselineIOVecs(iovec1024.segments), 1024, output.baseAddress, 1024, lkey,
                                              coverage.lowerBound, coverage.upperBound, .max, &bytes, &pages)
            }
            var iterator = iovec1024.makeIterator()
            var sges: [SGE] = []
            sges.reserveCapacity(1024)
            let extracted = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1024, keys: singleKey1024, ledger: ledger)
            iterator.release(extractedSGEs: sges, keys: singleKey1024, ledger: ledger)
            let written = convert()
            precondition(written == sges.count && bytes == extracted && pages == SGE.pageCount(of: sges)
                         && memcmp(output.baseAddress!, sges, 16 * written) == 0, "the checked C loop describes other SGEs")
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(convert()) }
        }
        Benchmark("\(prefix)memcpy/IOVEC-1024", configuration: configuration) { benchmark in
            let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024 * 16, alignment: 16)
            let target = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024 * 16, alignment: 16)
            defer { source.deallocate(); target.deallocate() }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                memcpy(target.baseAddress!, source.baseAddress!, 1024 * 16)
                blackHole(target.baseAddress)
            }
        }
    }
}

/// The `iovec`s as the C baseline's identical layout.
func baselineIOVecs(_ segments: UnsafeBufferPointer<iovec>) -> UnsafePointer<baseline_iovec>? {
    UnsafeRawPointer(segments.baseAddress)?.assumingMemoryBound(to: baseline_iovec.self)
}
