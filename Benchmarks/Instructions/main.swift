// Runs one extraction path over one workload many times, for callgrind to count the
// instructions: a measure that does not move with the machine's load.
//     Benchmarks/Instructions/run     (builds this, runs every path, prints ratios)
import Glibc
import IterExtract
import RDMASGE
import ScatterList
import SoftVerbs

let arguments = CommandLine.arguments
guard arguments.count == 4, let iterations = Int(arguments[3]) else {
    print("usage: instructions PATH WORKLOAD ITERATIONS   (PATH: pages sg sg-merged sg-two-step sge sge-mrcache sge-two-step mrcache-miss register none)")
    exit(2)
}
let path = arguments[1]
// The benchmark package's workloads (Benchmarks/Benchmarks/ExtractionBenchmarks/Workloads.swift,
// compiled in by `run`), so that both count over the same memory.
let workload = try arguments[2] == "BVEC-256" ? Workload(bvecPages: 256) : Workload(iovecSegments: 1024)
let prototype = workload.makeIterator()
let ledger = PinLedger(mode: .counting)
let table = ScatterTable(reservingCapacity: 256)
var sges: [SGE] = []
sges.reserveCapacity(1024)
var pages: [Page] = []
pages.reserveCapacity(256)
let keys = SingleKeyResolver(lkey: 7, coverage: workload.coverage, access: [.localWrite, .remoteRead])
// An MR cache over SoftVerbs, warmed by one extraction: setup, so every path (`none` too) makes it.
let device = SoftVerbs()
let cache = MRCache(domain: try device.allocateProtectionDomain(), access: [.localWrite, .remoteRead])
do {
    var iterator = prototype
    _ = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1024, keys: cache, ledger: ledger)
    iterator.release(extractedSGEs: sges, keys: cache, ledger: ledger)
}
// A registration's cost: a miss through a disabled MR cache (resolve + release: register,
// the cache's bookkeeping, deregister) against the protection domain's register and
// deregister alone, over the first 64 KiB of the workload's memory.
if path == "mrcache-miss" || path == "register" {
    let range = MemoryRange(address: workload.coverage.lowerBound, length: 1 << 16)
    let uncached = MRCache(domain: try device.allocateProtectionDomain(), access: [.localWrite, .remoteRead], isEnabled: false)
    for _ in 0..<iterations {
        if path == "register" {
            try uncached.domain.registerMemory(address: range.address, length: range.length, access: [.localWrite, .remoteRead]).deregister()
        } else {
            uncached.release(lkey: try uncached.resolve(range, access: .localWrite, retaining: true).lkey)
        }
    }
    exit(0)
}
for _ in 0..<iterations {
    var iterator = prototype
    while iterator.count > 0 {
        let bytes: Int
        switch path {
        case "sg", "sg-merged":
            bytes = try iterator.extract(maxSize: .max, into: table, maxEntries: 256,
                                         granularity: path == "sg" ? .kernel : .merged(maxSegment: 1 << 16), ledger: ledger)
        case "sg-two-step", "sge-two-step":
            bytes = try iterator.extractThroughPages(maxSize: .max, into: table, maxPages: 256, ledger: ledger)
            if path == "sge-two-step" {
                sges.removeAll(keepingCapacity: true)
                for entry in table { sges.append(SGE(address: UInt64(entry.address), length: UInt32(entry.length), lkey: 7)) }
            }
        case "pages":
            pages.removeAll(keepingCapacity: true)
            bytes = try iterator.extractPages(into: &pages, maxPages: 256, maxSize: .max, ledger: ledger).byteCount
            iterator.release(extractedPages: pages, ledger: ledger)
        case "sge":
            sges.removeAll(keepingCapacity: true)
            bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1024, keys: keys, ledger: ledger)
            iterator.release(extractedSGEs: sges, keys: keys, ledger: ledger)
        case "sge-mrcache":
            sges.removeAll(keepingCapacity: true)
            bytes = try iterator.extract(maxSize: .max, into: &sges, maxSGEs: 1024, keys: cache, ledger: ledger)
            iterator.release(extractedSGEs: sges, keys: cache, ledger: ledger)
        default:
            bytes = iterator.count
            iterator.advance(bytes)
        }
        table.releasePins(ledger: ledger)
        table.removeAll()
        if bytes == 0 { break }
    }
}
