#if canImport(Glibc)
import Glibc
#endif

/// Which physical page frame backs each virtual page of this process, as
/// `/proc/self/pagemap` tells it: the ground truth a ``SoftVerbs`` device that tracks
/// physical pages compares against.
///
/// The file holds one 64-bit entry per virtual page, at offset `(address / page size) * 8`:
/// bit 63 says the page is present in memory, bits 0–54 are its page frame number (PFN).
/// Since Linux 4.2 a process without `CAP_SYS_ADMIN` reads every PFN as 0; then nothing
/// can be tracked (``isReadable`` is `false`).
enum PageFrames {
    /// The size of a virtual page.
    static let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))

    /// The frame number of a page that is not present, or whose frame cannot be read.
    static let absent: UInt64 = 0

    /// `/proc/self/pagemap`, open for the life of the process (`-1` when it cannot be opened).
    private static let descriptor = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)

    /// Whether frame numbers can be read: a page this process just wrote reads as present
    /// with a nonzero frame number. Checked once.
    static let isReadable: Bool = {
        guard descriptor >= 0 else { return false }
        let size = Int(pageSize)
        guard let page = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              page != MAP_FAILED else { return false }
        defer { munmap(page, size) }
        page.storeBytes(of: 1, as: UInt8.self)
        return frame(ofPageAt: UInt(bitPattern: page)) != absent
    }()

    /// Faults in every page of `length` bytes at `address` and holds them as registration
    /// does (`ibv_reg_mr` pins them), then records the frame behind each page.
    ///
    /// Pages are faulted in writable when the mapping allows it (`MADV_POPULATE_WRITE`),
    /// else readable (`MADV_POPULATE_READ`, Linux 5.14 and later for both): a page never
    /// written would otherwise be the shared zero page, which the program's first write
    /// replaces, and that would look like a new mapping. They are held by splicing them
    /// into a pipe of the region's own (`vmsplice(2)` without `SPLICE_F_GIFT` takes a
    /// reference on each page, as a pin does): without the hold, the kernel hands a
    /// page the program unmapped straight to its next mapping, the frame number comes
    /// back unchanged, and the change goes unseen. A pipe holds at most
    /// `/proc/sys/fs/pipe-max-size` bytes of pages without `CAP_SYS_RESOURCE`; pages
    /// beyond that are recorded but not held.
    static func snapshot(address: UInt, length: Int) -> FrameSnapshot {
        let first = address & ~(pageSize - 1)
        let end = (address + UInt(length) + pageSize - 1) & ~(pageSize - 1)
        let start = UnsafeMutableRawPointer(bitPattern: first)
        if madvise(start, Int(end - first), MADV_POPULATE_WRITE) != 0 {
            _ = madvise(start, Int(end - first), MADV_POPULATE_READ)
        }
        var hold: [Int32] = [-1, -1]
        if let vmsplice, pipe(&hold) == 0 {
            for side in hold { _ = fcntl(side, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(hold[1], F_SETFL, O_NONBLOCK)
            _ = fcntl(hold[1], setPipeSize, Int32(clamping: end - first))
            var pages = iovec(iov_base: start, iov_len: Int(end - first))
            _ = vmsplice(hold[1], &pages, 1, spliceNonblocking)
        }
        let count = Int((end - first) / pageSize)
        var entries = [UInt64](repeating: 0, count: count)
        let wanted = count * MemoryLayout<UInt64>.size
        let read = entries.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, wanted, offset(of: first)) }
        let frames = read == wanted ? entries.map(frame(ofEntry:)) : [UInt64](repeating: absent, count: count)
        return FrameSnapshot(frames: frames, hold: (hold[0], hold[1]))
    }

    /// `vmsplice(2)`, which Swift's Glibc module leaves out (it is a GNU extension), from
    /// the C library; `nil` if the library lacks it.
    private static let vmsplice: (@convention(c) (Int32, UnsafePointer<iovec>, Int, UInt32) -> Int)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "vmsplice") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, UnsafePointer<iovec>, Int, UInt32) -> Int).self)
    }()
    /// `F_SETPIPE_SZ` and `SPLICE_F_NONBLOCK` of `<fcntl.h>`, GNU extensions as well.
    private static let setPipeSize: Int32 = 1031
    private static let spliceNonblocking: UInt32 = 2

    /// The frame behind the page that holds `address` now; ``absent`` when it is not
    /// present (or unmapped).
    static func frame(ofPageAt address: UInt) -> UInt64 {
        var entry: UInt64 = 0
        let read = pread(descriptor, &entry, MemoryLayout<UInt64>.size, offset(of: address))
        return read == MemoryLayout<UInt64>.size ? frame(ofEntry: entry) : absent
    }

    /// The frame number a pagemap entry names, or ``absent`` when its page is not present.
    private static func frame(ofEntry entry: UInt64) -> UInt64 {
        entry >> 63 == 1 ? entry & ((1 << 55) - 1) : absent
    }

    /// Where the entry of the page holding `address` is in the file.
    private static func offset(of address: UInt) -> off_t {
        off_t(address / pageSize) * off_t(MemoryLayout<UInt64>.size)
    }
}

/// The frames behind a tracked region's pages at registration, and the hold on them.
struct FrameSnapshot {
    /// The frame behind each page of the region, first page first; `PageFrames.absent`
    /// for one that was not present.
    var frames: [UInt64]
    /// The pipe whose buffers reference the pages (`-1` when none could be made).
    var hold: (read: Int32, write: Int32)

    /// Lets the pages go, as deregistration unpins them.
    func release() {
        if hold.read >= 0 { close(hold.read) }
        if hold.write >= 0 { close(hold.write) }
    }
}
