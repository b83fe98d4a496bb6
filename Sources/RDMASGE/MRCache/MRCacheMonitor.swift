/// How an ``MRCache`` learns that user memory went away (`munmap`, `mremap`, `madvise`,
/// heap trimming), so that it never hands out a region whose pages are no longer there.
///
/// Only regions registered for a lookup that retains (user memory: IOVEC and UBUF
/// iterators) need the monitor. Regions registered without a reference (memory the
/// library owns, such as `PagePool` pages for BVEC, FOLIOQ and XARRAY iterators) are
/// reused either way: whoever frees that memory calls ``MRCache/invalidate(_:)``.
public enum MRCacheMonitor: Hashable, Sendable {
    /// The process's userfaultfd memory monitor watches every region registered for user
    /// memory; a region the kernel does not let it watch (no userfaultfd for the process,
    /// a file mapping, memory another userfaultfd of the program watches) is unmonitored,
    /// as with ``none``. The default.
    case userfaultfd
    /// No monitor: user memory is never reused. Every retaining lookup registers, and the
    /// region is deregistered at its last release. The safe mode: correct whatever the
    /// program does with its memory, at the cost of a registration per lookup.
    case none
}
