#include "CBaseline.h"

size_t baseline_iovec_to_sge(const struct iovec *iov, size_t count,
                             struct baseline_sge *sges, size_t max_sges, uint32_t lkey) {
    size_t written = 0;
    for (size_t i = 0; i < count && written < max_sges; i++) {
        if (iov[i].iov_len == 0)
            continue;
        sges[written].addr = (uint64_t)(uintptr_t)iov[i].iov_base;
        sges[written].length = (uint32_t)iov[i].iov_len;
        sges[written].lkey = lkey;
        written++;
    }
    return written;
}
