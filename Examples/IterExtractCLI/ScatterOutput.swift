import IterExtract
import ScatterList

/// Extracts `iterator` into a chained scatter table, call by call, prints every slot
/// (chain links and the END marker included) and, if asked, a digest of the bytes.
func printScatterExtraction(
    _ iterator: inout IOIterator, maxEntries: Int, maxSize: Int, chunkCapacity: Int,
    granularity: ScatterGranularity, digest: DigestKind?
) throws(ScatterListError) {
    let ledger = PinLedger(mode: .exact)
    let table = ScatterTable(chunkCapacity: chunkCapacity)
    defer { table.releasePins(ledger: ledger) }
    var calls = 0
    var bytes = 0
    while iterator.count > 0 {
        let added = try iterator.extract(maxSize: maxSize, into: table, maxEntries: maxEntries,
                                         granularity: granularity, ledger: ledger)
        if added == 0 { break }
        calls += 1
        bytes += added
    }
    table.markEnd()
    print("slot   page              offset  length  marks")
    var chunk = 0
    var slot = 0
    for entry in table.slots {
        let marks = [entry.isChainLink ? "CHAIN" : nil, entry.isEnd ? "END" : nil, entry.isPinned ? "pinned" : nil]
            .compactMap { $0 }.joined(separator: " ")
        if entry.isChainLink {
            print("\(pad("\(chunk).\(slot)", 5))  → chunk \(chunk + 1)")
            chunk += 1
            slot = 0
            continue
        }
        let page = hex(entry.page.frame).padding(toLength: 16, withPad: " ", startingAt: 0)
        print("\(pad("\(chunk).\(slot)", 5))  \(page)  \(pad(entry.offset, 6))  \(pad(entry.length, 6))  \(marks)")
        slot += 1
    }
    print("total: \(bytes) bytes in \(table.count) entries (\(table.chunkCount) chunks of \(chunkCapacity) slots) "
          + "over \(calls) calls; pins held: \(ledger.pinnedPageCount)")
    switch digest {
    case .sha256: print("sha256: " + table.sha256().map { String($0, radix: 16).leftPadded(to: 2) }.joined())
    case .crc32c: print("crc32c: " + hex(table.crc32c()))
    case nil: break
    }
}

extension String {
    /// The string with zeros in front up to `width` characters.
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
