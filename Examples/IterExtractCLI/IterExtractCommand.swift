import ArgumentParser
import IterExtract
import ScatterList

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

    @Option(help: "Extract into: pages, sg (a scatter table) or sge (ibv_sge entries).")
    var to: OutputKind = .pages

    @Option(help: "Most pages (pages) or entries (sg) or SGEs (sge) per extraction call.")
    var maxPages: Int = 8

    @Option(help: "Most bytes per extraction call.")
    var maxSize: Int = 100 * 1024

    @Flag(help: "sg: merge contiguous frames into one entry (up to 64 KiB) instead of the kernel's granularity.")
    var merged = false

    @Option(help: "sg: slots per scatter-table chunk (the last slot of a full chunk is the chain link).")
    var chunk: Int = 8

    @Option(help: "sg: print a digest of the bytes the table describes (sha256 or crc32c).")
    var digest: DigestKind?

    @Option(help: "sge: leading SGEs reserved in every work request (e.g. a protocol header).")
    var reservedSGEs: Int = 1

    @Option(help: "sge: the most payload bytes in one work request.")
    var maxMessageSize: Int = 64 * 1024

    /// The most pages, entries or SGEs per call, and slots per scatter-table chunk, the demo allocates for.
    static let maxEntries = 65_536
    /// The largest file `--file` reads into a page cache.
    static let maxFileSize = 256 << 20

    mutating func validate() throws {
        guard (1...4096).contains(pages) else { throw ValidationError("--pages must be in 1...4096") }
        guard (0...Folio.maxOrder).contains(folioOrder) else { throw ValidationError("--folio-order must be in 0...9") }
        guard (1...Self.maxEntries).contains(maxPages) else { throw ValidationError("--max-pages must be in 1...\(Self.maxEntries)") }
        guard maxSize > 0 else { throw ValidationError("--max-size must be positive") }
        guard (2...Self.maxEntries).contains(chunk) else { throw ValidationError("--chunk must be in 2...\(Self.maxEntries)") }
        guard reservedSGEs >= 0, reservedSGEs < maxPages else { throw ValidationError("--reserved-sges must be below --max-pages") }
        guard maxMessageSize > 0 else { throw ValidationError("--max-message-size must be positive") }
        guard digest == nil || to == .sg else { throw ValidationError("--digest goes with --to sg") }
    }

    func run() throws {
        let sample = if let file { try SampleMemory(file: file, maxOrder: folioOrder) }
                     else { try SampleMemory(kind: kind, direction: direction, pages: pages) }
        let pipe = sample.kind == .pipe ? PagePipe(pool: sample.pool) : nil
        var iterator = try sample.makeIterator(pipe: pipe)
        print("\(iterator.kind) \(iterator.direction) iterator: \(iterator.count) bytes, "
              + "\(iterator.remainingSegmentCount) segments, \(iterator.pageCount(max: .max)) pages; "
              + "extraction will \(iterator.extractionWillPin ? "pin" : "not pin")")
        do {
            switch to {
            case .pages:
                try printPageExtraction(&iterator, maxPages: maxPages, maxSize: maxSize)
            case .sg:
                try printScatterExtraction(&iterator, maxEntries: maxPages, maxSize: maxSize, chunkCapacity: chunk,
                                           granularity: merged ? .merged(maxSegment: 64 * 1024) : .kernel, digest: digest)
            case .sge:
                try printSGEExtraction(&iterator, maxSGEs: maxPages, maxSize: maxSize,
                                       reservedSGEs: reservedSGEs, maxMessageSize: maxMessageSize)
            }
        } catch {
            print("error: \(error)")
            throw ExitCode.failure
        }
    }
}
