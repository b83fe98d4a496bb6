import Benchmark
import IterExtract
import SMBDirect
import ScatterList

/// SMB 3.x signing (AES-128-CMAC) of a 64-byte header and a 1 MiB payload: once through a
/// scatter table of the BVEC-256 workload's 256 pages, which are not contiguous, streamed
/// page by page; once over the same bytes copied into one buffer after the header. Issue
/// #20's goal: the table within 1.1× of the buffer (`Benchmarks/report` prints the ratio).
func signingBenchmarks(bvec: Workload, ledger: PinLedger) {
    let signer = SMB2Signer(key: Array(0..<16), algorithm: .aesCMAC)
    let header = (0..<64).map { UInt8($0) }

    /// The workload's bytes as a table of one entry per page.
    func payloadTable() throws -> ScatterTable {
        let table = ScatterTable(reservingCapacity: 256)
        var iterator = bvec.makeIterator()
        try iterator.extract(maxSize: .max, into: table, maxEntries: 256, ledger: ledger)
        table.markEnd()
        precondition(table.count == 256 && table.byteCount == 1 << 20, "the BVEC-256 workload is 256 pages")
        return table
    }

    Benchmark("sign-1MiB-scatter") { benchmark in
        let table = try payloadTable()
        header.withUnsafeBytes { header in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(signer.signature(header: header, payload: table)) }
            benchmark.stopMeasurement()
        }
        table.releasePins(ledger: ledger)
    }

    Benchmark("sign-1MiB-contiguous") { benchmark in
        let table = try payloadTable()
        let message = UnsafeMutableRawBufferPointer.allocate(byteCount: header.count + table.byteCount, alignment: 64)
        defer { message.deallocate() }
        message.copyBytes(from: header)
        precondition(table.copy(into: UnsafeMutableRawBufferPointer(rebasing: message[header.count...])) == table.byteCount)
        let contiguous = UnsafeRawBufferPointer(message)
        // Checked once, before measuring: the same bytes sign alike either way.
        precondition(header.withUnsafeBytes { signer.signature(header: $0, payload: table) }
                     == signer.signature(header: contiguous, payload: nil), "the two rows sign different bytes")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(signer.signature(header: contiguous, payload: nil)) }
        benchmark.stopMeasurement()
        table.releasePins(ledger: ledger)
    }
}
