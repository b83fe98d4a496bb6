import Benchmark
import IterExtract

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .instructions],
        maxDuration: .seconds(1),
        maxIterations: 10_000
    )
    let workloads = try! Workload.all()
    // A counting ledger costs one atomic add per call: the mode for hot paths.
    let ledger = PinLedger(mode: .counting)

    // The harness's own allocations per sample: subtract these from every other row.
    Benchmark("baseline/empty") { benchmark in
        var pages: [Page] = []
        pages.reserveCapacity(64)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(pages) }
    }

    for workload in workloads {
        Benchmark("pages/\(workload.name)") { benchmark in
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
    }
}
