import Glibc
import IterExtract
import ScatterList
import TestKit

/// The bytes the entries describe, read through each entry's direct view, in order.
func entryBytes(_ entries: some Sequence<ScatterEntry>) -> [UInt8] {
    entries.flatMap { bytes(of: $0.page, offset: $0.offset, length: $0.length) }
}

/// The table's bytes copied out through ``ScatterTable/copy(into:skipping:)``.
func copiedBytes(of table: ScatterTable, skipping skip: Int = 0) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: max(table.byteCount - skip, 0))
    let copied = out.withUnsafeMutableBytes { table.copy(into: $0, skipping: skip) }
    return Array(out.prefix(copied))
}

/// Every byte the iterator describes from its position, as kernel-granularity
/// entries of a fresh table (to compare two iterators' positions).
func remainingEntries(of iterator: IOIterator) throws -> [ScatterEntry] {
    var copy = iterator
    let table = ScatterTable()
    let ledger = PinLedger(mode: .exact)
    try copy.extract(maxSize: .max, into: table, maxEntries: .max / 2, ledger: ledger)
    table.releasePins(ledger: ledger)
    return Array(table)
}

/// The KUnit extract-to-SG sources: each describes the 1 MiB KUnit buffer (or its
/// KVEC/BVEC ranges) and the pattern bytes it should yield.
enum KUnitSource: String, CaseIterable, Sendable, CustomStringConvertible {
    case kvec, bvec, folioq, xarray, ubuf

    var description: String { rawValue.uppercased() }

    /// The whole buffer as bio_vecs, loaded page by page with the KUnit loader's
    /// merging: one element per run of contiguous frames (four runs of 64 pages).
    static func wholeBufferBVecs(_ buffer: KUnitBuffer) -> [BioVec] {
        buffer.bvecs((0..<buffer.pages.count).map { (page: $0, from: 0, to: pageSize) })
    }

    /// Calls `body` with a source iterator over the fixture, and the bytes it describes.
    /// The fixture's memory is valid, so making the iterator cannot throw.
    func withIterator<R>(_ buffer: KUnitBuffer, _ body: (inout IOIterator, [UInt8]) throws -> R) rethrows -> R {
        buffer.fillWithPattern()
        let whole = KUnitBuffer.expectedStream(ranges: [(0, buffer.count)])
        switch self {
        case .kvec:
            let kvecs = buffer.kvecs()
            return try kvecs.withUnsafeBufferPointer { segments in
                var iterator = try! IOIterator(kvecs: segments, direction: .source)
                return try body(&iterator, KUnitBuffer.expectedStream(ranges: KUnit.kvecRanges))
            }
        case .bvec:
            return try Self.wholeBufferBVecs(buffer).withUnsafeBufferPointer { segments in
                var iterator = try! IOIterator(bvecs: segments, direction: .source)
                return try body(&iterator, whole)
            }
        case .folioq:
            var iterator = IOIterator(folioQueue: buffer.folioQueue(), count: buffer.count, direction: .source)
            return try body(&iterator, whole)
        case .xarray:
            var iterator = try! IOIterator(pageCache: buffer.pageCache(), position: 0, count: buffer.count, direction: .source)
            return try body(&iterator, whole)
        case .ubuf:
            var iterator = IOIterator(source: UnsafeRawBufferPointer(buffer.bytes))
            return try body(&iterator, whole)
        }
    }
}
