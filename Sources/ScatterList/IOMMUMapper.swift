import IterExtract
import Synchronization

/// A model of an IOMMU: it maps a table's pages into a page-granular I/O virtual
/// address (IOVA) space and coalesces entries that end up contiguous there.
///
/// Mapping a table allocates one run of IOVA pages for all its entries, each entry
/// starting on a fresh IOVA page at its own offset within the page; an entry that
/// starts at offset 0 right after one that ends at a page boundary is then
/// contiguous with it in IOVA and joins its DMA segment, up to ``maxSegmentSize``.
/// So ``ScatterTable/mappedCount`` may be smaller than the entry count, as with the
/// kernel's `iommu_dma_map_sg`. ``translate(_:)`` resolves an IOVA back to the
/// byte it maps, as the device would see it.
public final class IOMMUMapper: DMAMapper, Sendable {
    /// The first IOVA of the space.
    public let iovaBase: UInt64
    /// The number of IOVA pages.
    public let pageCount: Int
    /// The largest DMA segment coalescing may make (the kernel's
    /// `dma_get_max_seg_size`, 64 KiB by default).
    public let maxSegmentSize: Int

    private struct State {
        /// The frame each IOVA page maps, or nil when free.
        var frames: [UInt?]
        /// Allocated runs: first IOVA page → page count.
        var runs: [Int: Int] = [:]
    }

    private let state: Mutex<State>

    /// Creates an IOVA space of `pageCount` pages from `iovaBase` (page-aligned).
    public init(iovaBase: UInt64 = 1 << 32, pageCount: Int, maxSegmentSize: Int = 1 << 16) {
        precondition(iovaBase & UInt64(pageMask) == 0, "the IOVA base is page-aligned")
        precondition(pageCount > 0, "an IOVA space has at least one page")
        precondition(UInt64(pageCount) <= (UInt64.max - iovaBase) >> UInt64(pageShift), "the IOVA space ends below 2^64")
        precondition(maxSegmentSize > 0, "a max segment size is positive")
        self.iovaBase = iovaBase
        self.pageCount = pageCount
        self.maxSegmentSize = maxSegmentSize
        self.state = Mutex(State(frames: Array(repeating: nil, count: pageCount)))
    }

    /// The number of free IOVA pages.
    public var freePageCount: Int { state.withLock { $0.frames.count { $0 == nil } } }

    /// The direct-view address of the byte mapped at `iova`, or `nil` when unmapped.
    public func translate(_ iova: UInt64) -> UInt? {
        guard iova >= iovaBase else { return nil }
        let page = Int((iova - iovaBase) >> UInt64(pageShift))
        guard page < pageCount, let frame = state.withLock({ $0.frames[page] }) else { return nil }
        return frame << UInt(pageShift) | UInt(iova & UInt64(pageMask))
    }

    /// Maps every entry into one run of IOVA pages and coalesces.
    ///
    /// - Throws: ``ScatterListError/iovaSpaceExhausted(requestedPages:largestFreeRun:)``
    ///   when no free run is long enough; nothing is mapped then.
    public func map(_ table: ScatterTable) throws(ScatterListError) -> Int {
        let needed = table.reduce(0) { $0 + $1.pages.count }
        if needed == 0 { return zeroLengthSegments(table) }
        let first = try state.withLock { (state) throws(ScatterListError) -> Int in
            guard let first = Self.firstFreeRun(of: needed, in: state.frames) else {
                throw .iovaSpaceExhausted(requestedPages: needed, largestFreeRun: Self.largestFreeRun(in: state.frames))
            }
            var page = first
            for entry in table {
                for frame in entry.pages {
                    state.frames[page] = frame.frame
                    page += 1
                }
            }
            state.runs[first] = needed
            return first
        }
        var segments = 0
        var iovaPage = first
        var segmentEnd: UInt64 = 0
        for index in table.indices {
            let entry = table[index]
            let iova = iovaBase + UInt64(iovaPage) << UInt64(pageShift) + UInt64(entry.address & pageMask)
            iovaPage += entry.pages.count
            if segments > 0, iova == segmentEnd, table[segments - 1].dmaLength + entry.length <= maxSegmentSize {
                table[segments - 1].dmaLength += entry.length
            } else {
                table[segments].dmaAddress = iova
                table[segments].dmaLength = entry.length
                segments += 1
            }
            segmentEnd = iova + UInt64(entry.length)
        }
        for index in segments..<table.count {
            table[index].dmaAddress = 0
            table[index].dmaLength = 0
        }
        return segments
    }

    /// Frees the IOVA run the table was mapped into.
    public func unmap(_ table: ScatterTable) {
        guard table.mappedCount > 0, table[0].dmaLength > 0 else { return }
        // A table mapped elsewhere finds no run here and traps with the message below.
        let first = Int(truncatingIfNeeded: (table[0].dmaAddress &- iovaBase) >> UInt64(pageShift))
        state.withLock { state in
            guard let length = state.runs.removeValue(forKey: first) else {
                preconditionFailure("the table was not mapped by this IOMMU")
            }
            for page in first..<first + length { state.frames[page] = nil }
        }
    }

    /// A table whose entries are all empty maps to no IOVA: every segment is empty.
    private func zeroLengthSegments(_ table: ScatterTable) -> Int {
        for index in table.indices {
            table[index].dmaAddress = 0
            table[index].dmaLength = 0
        }
        return 0
    }

    private static func firstFreeRun(of length: Int, in frames: [UInt?]) -> Int? {
        var runStart = 0
        for page in frames.indices {
            if frames[page] != nil {
                runStart = page + 1
            } else if page - runStart + 1 == length {
                return runStart
            }
        }
        return nil
    }

    private static func largestFreeRun(in frames: [UInt?]) -> Int {
        var largest = 0
        var current = 0
        for frame in frames {
            current = frame == nil ? current + 1 : 0
            largest = Swift.max(largest, current)
        }
        return largest
    }
}
