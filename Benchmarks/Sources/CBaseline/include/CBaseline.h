#ifndef ITEREXTRACT_CBASELINE_H
#define ITEREXTRACT_CBASELINE_H
#include <stddef.h>
#include <stdint.h>

/// The layout of struct iovec, declared here rather than by including <sys/uio.h>:
/// a C module that includes a libc header makes Swift see `iovec` as this module's
/// type as well, and the benchmarks then cannot find IterExtract's conformances of
/// the libc `iovec` (the compiler crashes).
struct baseline_iovec {
    void *iov_base;
    size_t iov_len;
};

/// The layout of libibverbs' struct ibv_sge, without needing libibverbs.
struct baseline_sge {
    uint64_t addr;
    uint32_t length;
    uint32_t lkey;
};

/// What a C programmer writes by hand: one SGE per non-empty iovec, one lkey for all.
/// Returns the number of SGEs written (at most max_sges).
size_t baseline_iovec_to_sge(const struct baseline_iovec *iov, size_t count,
                             struct baseline_sge *sges, size_t max_sges, uint32_t lkey);

/// The same by hand with the checks extraction makes (the contract's, not Swift's):
/// at most max_bytes bytes, empty iovecs skipped, a range that wraps or leaves
/// [coverage_start, coverage_end) stops the walk, contiguous iovecs merge up to
/// UINT32_MAX bytes, and the pages of every SGE are counted for pinning (*pages).
/// Returns the number of SGEs written; *bytes is what they describe.
size_t baseline_iovec_to_sge_checked(const struct baseline_iovec *iov, size_t count,
                                     struct baseline_sge *sges, size_t max_sges, uint32_t lkey,
                                     uintptr_t coverage_start, uintptr_t coverage_end,
                                     size_t max_bytes, size_t *bytes, size_t *pages);
#endif
