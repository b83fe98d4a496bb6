#if canImport(Glibc)
import Glibc
#endif
import Locking
import Verbs

/// Which pages registered memory regions hold, counted per page, with every held page
/// marked `MADV_DONTFORK`: what libibverbs does for each registration once
/// `ibv_fork_init` has enabled fork protection (`IBV_FORK_ENABLED`).
///
/// Why: a registered page is pinned, and the device keeps writing to the physical page
/// it pinned. After `fork()` an ordinary private page is copy-on-write, shared by parent
/// and child; the parent's next write anywhere on it (a neighbouring variable is enough)
/// moves the parent to a fresh copy, while the device keeps writing the old frame, and
/// the data of an RDMA WRITE or READ never shows up in the parent. A page marked
/// `MADV_DONTFORK` is not part of the child at all, so the parent's page stays its own.
///
/// Ranges are page-rounded (the first and last page of a region that starts or ends
/// mid-page are marked whole), and counted: a page gets `MADV_DONTFORK` when the first
/// region on it is registered and `MADV_DOFORK` when the last one on it is
/// deregistered, so overlapping and neighbouring regions keep their pages out of the
/// child until every one of them is gone. One ledger serves the whole process, as
/// libibverbs keeps one for every device it opens.
struct SoftForkProtection {
    /// Whole pages `start..<end`, each held by `regions` regions (at least one).
    struct Run {
        var start: UInt
        var end: UInt
        var regions: Int
    }

    /// The held pages, in address order, disjoint; neighbours with the same count merged.
    private var runs: [Run] = []

    /// The process's ledger, shared by every ``SoftVerbs`` device made with fork
    /// protection. Taken under a device's lock, never the other way round.
    static let shared = LockedValue(SoftForkProtection())

    /// The pages `length` bytes at `address` touch, as page-aligned addresses.
    static func pages(address: UInt, length: Int) -> Range<UInt> {
        let pageSize = PageFrames.pageSize
        return address & ~(pageSize - 1)..<(address + UInt(length) + pageSize - 1) & ~(pageSize - 1)
    }

    /// Counts one more region on the pages of `length` bytes at `address`, and marks
    /// those no region held before `MADV_DONTFORK`.
    ///
    /// - Throws: the `errno` of `madvise(2)`, for `ibv_reg_mr` (libibverbs fails the
    ///   registration with it): `ENOMEM` when part of the range is not mapped, `EINVAL`
    ///   for a mapping that cannot be marked. Every page this call marked is marked
    ///   `MADV_DOFORK` again first, and the counts are unchanged.
    mutating func hold(address: UInt, length: Int) throws(VerbsError) {
        let pages = Self.pages(address: address, length: length)
        let fresh = unheld(in: pages)
        for (index, run) in fresh.enumerated() {
            guard Self.advise(run, MADV_DONTFORK) != 0 else { continue }
            let error = errno
            // madvise(2) marks what is mapped of a range even when it fails for a hole
            // in it, so the run that failed is undone as well.
            for undone in fresh[...index] { _ = Self.advise(undone, MADV_DOFORK) }
            throw VerbsError(.registerMemory, errno: error,
                             "madvise(MADV_DONTFORK) of \(run.upperBound - run.lowerBound) bytes at 0x\(String(run.lowerBound, radix: 16)) failed")
        }
        _ = adjust(pages, by: 1)
    }

    /// Counts one region less on the pages of `length` bytes at `address` (which
    /// ``hold(address:length:)`` counted), and marks those no region holds any more
    /// `MADV_DOFORK`. A failure of `madvise(2)` (memory unmapped while registered) is
    /// ignored, as `ibv_dereg_mr` ignores it: there is nothing left to give back.
    mutating func release(address: UInt, length: Int) {
        for run in adjust(Self.pages(address: address, length: length), by: -1) {
            _ = Self.advise(run, MADV_DOFORK)
        }
    }

    /// The parts of `pages` no region holds, in address order.
    private func unheld(in pages: Range<UInt>) -> [Range<UInt>] {
        var gaps: [Range<UInt>] = []
        var cursor = pages.lowerBound
        for run in runs where run.end > pages.lowerBound && run.start < pages.upperBound {
            if cursor < run.start { gaps.append(cursor..<run.start) }
            cursor = run.end
        }
        if cursor < pages.upperBound { gaps.append(cursor..<pages.upperBound) }
        return gaps
    }

    /// Adds `delta` to the count of every page of `pages`, and returns the runs whose
    /// count fell to zero (merged where they touch).
    private mutating func adjust(_ pages: Range<UInt>, by delta: Int) -> [Range<UInt>] {
        var adjusted: [Run] = []
        adjusted.reserveCapacity(runs.count + 2)
        var freed: [Range<UInt>] = []
        func append(_ start: UInt, _ end: UInt, _ regions: Int) {
            if regions == 0 {
                if let last = freed.last, last.upperBound == start {
                    freed[freed.count - 1] = last.lowerBound..<end
                } else {
                    freed.append(start..<end)
                }
            } else if let last = adjusted.last, last.end == start, last.regions == regions {
                adjusted[adjusted.count - 1].end = end
            } else {
                adjusted.append(Run(start: start, end: end, regions: regions))
            }
        }
        func fill(_ start: UInt, _ end: UInt) {
            precondition(delta > 0, "released pages at 0x\(String(start, radix: 16)) that no region holds")
            append(start, end, delta)
        }
        // The first page of `pages` whose count is not adjusted yet.
        var cursor = pages.lowerBound
        for run in runs {
            guard run.end > pages.lowerBound, run.start < pages.upperBound else {
                if run.start >= pages.upperBound, cursor < pages.upperBound {
                    fill(cursor, pages.upperBound)
                    cursor = pages.upperBound
                }
                append(run.start, run.end, run.regions)
                continue
            }
            if run.start < pages.lowerBound { append(run.start, pages.lowerBound, run.regions) }
            let start = max(run.start, pages.lowerBound), end = min(run.end, pages.upperBound)
            if cursor < start { fill(cursor, start) }
            append(start, end, run.regions + delta)
            cursor = end
            if run.end > pages.upperBound { append(pages.upperBound, run.end, run.regions) }
        }
        if cursor < pages.upperBound { fill(cursor, pages.upperBound) }
        runs = adjusted
        return freed
    }

    /// `madvise(2)` of whole pages.
    private static func advise(_ pages: Range<UInt>, _ advice: Int32) -> Int32 {
        madvise(UnsafeMutableRawPointer(bitPattern: pages.lowerBound), Int(pages.upperBound - pages.lowerBound), advice)
    }
}
