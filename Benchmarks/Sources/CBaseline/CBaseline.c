#include "CBaseline.h"

size_t baseline_iovec_to_sge(const struct baseline_iovec *iov, size_t count,
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

size_t baseline_iovec_to_sge_checked(const struct baseline_iovec *iov, size_t count,
                                     struct baseline_sge *sges, size_t max_sges, uint32_t lkey,
                                     uintptr_t coverage_start, uintptr_t coverage_end,
                                     size_t max_bytes, size_t *bytes, size_t *pages) {
    size_t written = 0, left = max_sges > 0 ? max_bytes : 0, page_count = 0;
    uintptr_t open_start = 0, open_end = 0;
    int open = 0;
    for (size_t i = 0; i < count && left > 0; i++) {
        size_t len = iov[i].iov_len < left ? iov[i].iov_len : left;
        uintptr_t start = (uintptr_t)iov[i].iov_base, end = start + len;
        if (len == 0)
            continue;
        if (end < start || start < coverage_start || end > coverage_end)
            break;
        if (open && start == open_end && end - open_start <= UINT32_MAX) {
            open_end = end;
        } else {
            if (open) {
                if (written + 1 == max_sges || len > UINT32_MAX)
                    break;
                sges[written].addr = open_start;
                sges[written].length = (uint32_t)(open_end - open_start);
                sges[written].lkey = lkey;
                page_count += ((open_end - 1) >> 12) - (open_start >> 12) + 1;
                written++;
            }
            open = 1;
            open_start = start;
            open_end = end;
        }
        left -= len;
    }
    if (open) {
        sges[written].addr = open_start;
        sges[written].length = (uint32_t)(open_end - open_start);
        sges[written].lkey = lkey;
        page_count += ((open_end - 1) >> 12) - (open_start >> 12) + 1;
        written++;
    }
    *bytes = (max_sges > 0 ? max_bytes : 0) - left;
    *pages = page_count;
    return written;
}
