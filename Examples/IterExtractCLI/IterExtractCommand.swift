import ArgumentParser
import IterExtract

extension IOIteratorKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

extension IODirection: ExpressibleByArgument {}

@main
struct IterExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iterextract",
        abstract: "Build an I/O iterator over sample memory (or a file) and show what extraction produces.",
        discussion: """
        Iterator kinds:
          ubuf     one user buffer (pinned on extraction)
          iovec    an array of user buffers (pinned on extraction)
          kvec     an array of library-owned buffers (listed, not pinned)
          bvec     an array of (page, offset, length) triples (listed)
          xarray   a byte range of a page cache; --file reads a file into one (listed)
          folioq   a chain of folio-queue segments (listed)
          pipe     a pipe being filled: extraction appends fresh pages (destination only)
          discard  a byte count that goes nowhere: extraction is an error
        """
    )

    @Option(name: .shortAndLong, help: "The iterator kind.")
    var kind: IOIteratorKind = .iovec

    @Option(name: .shortAndLong, help: "source (data leaves the buffer) or destination (data lands in it).")
    var direction: IODirection = .source

    @Option(help: "Pages of sample memory.")
    var pages: Int = 8

    @Option(help: "Read this file into a page cache and describe it with an XARRAY iterator.")
    var file: String?

    @Option(help: "Largest folio order used for --file (0...9).")
    var folioOrder: Int = 2

    @Option(help: "Most pages per extraction call.")
    var maxPages: Int = 8

    @Option(help: "Most bytes per extraction call.")
    var maxSize: Int = 100 * 1024

    mutating func validate() throws {
        guard (1...4096).contains(pages) else { throw ValidationError("--pages must be in 1...4096") }
        guard (0...Folio.maxOrder).contains(folioOrder) else { throw ValidationError("--folio-order must be in 0...9") }
        guard maxPages > 0, maxSize > 0 else { throw ValidationError("--max-pages and --max-size must be positive") }
    }

    func run() throws {
        let sample = if let file { try SampleMemory(file: file, maxOrder: folioOrder) }
                     else { try SampleMemory(kind: kind, direction: direction, pages: pages) }
        let pipe = sample.kind == .pipe ? PagePipe(pool: sample.pool) : nil
        var iterator = try sample.makeIterator(pipe: pipe)
        let ledger = PinLedger(mode: .exact)
        print("\(iterator.kind) \(iterator.direction) iterator: \(iterator.count) bytes, "
              + "\(iterator.remainingSegmentCount) segments, \(iterator.pageCount(max: .max)) pages; "
              + "extraction will \(iterator.extractionWillPin ? "pin" : "not pin")")
        print("call  page              offset  length  retention")
        var pagesOut: [Page] = []
        pagesOut.reserveCapacity(maxPages)
        var allPages: [Page] = []
        var calls = 0
        var bytes = 0
        do {
            while iterator.count > 0 {
                pagesOut.removeAll(keepingCapacity: true)
                let result = try iterator.extractPages(into: &pagesOut, maxPages: maxPages, maxSize: maxSize, ledger: ledger)
                if result.byteCount == 0 { break }
                calls += 1
                var left = result.byteCount
                var offset = result.firstPageOffset
                for page in pagesOut {
                    let length = min(left, pageSize - offset)
                    let frame = "0x" + String(page.frame, radix: 16)
                    print("\(pad(calls, 4))  \(frame.padding(toLength: 16, withPad: " ", startingAt: 0))  \(pad(offset, 6))  \(pad(length, 6))  \(iterator.extractionWillPin ? "pinned" : "listed")")
                    left -= length
                    offset = 0
                }
                bytes += result.byteCount
                allPages += pagesOut
            }
        } catch {
            print("error: \(error)")
            throw ExitCode.failure
        }
        print("total: \(bytes) bytes in \(allPages.count) pages over \(calls) calls; pins held: \(ledger.pinnedPageCount)")
        iterator.release(extractedPages: allPages, ledger: ledger)
        print("after release: pins held: \(ledger.pinnedPageCount)")
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
