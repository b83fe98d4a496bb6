// userfaultfd(2) as an event source for the MR cache's memory monitor (RDMASGE): the
// system call is variadic and the ioctls are macros over structs with unions, none of
// which Swift imports, so each step is one inline function here.
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/// Opens a non-blocking, close-on-exec userfaultfd that handles user-mode faults only
/// when `user_mode_only` (what an unprivileged process may open since Linux 5.11).
/// Returns the descriptor, or -errno.
static inline int uffd_open(int user_mode_only) {
    int flags = O_CLOEXEC | O_NONBLOCK | (user_mode_only ? UFFD_USER_MODE_ONLY : 0);
    long fd = syscall(SYS_userfaultfd, flags);
    return fd < 0 ? -errno : (int)fd;
}

/// Asks for the unmap, remove and remap events (`UFFDIO_API`), and with `shared_memory`
/// for write-protect registration of shared memory and hugetlbfs too (Linux 5.19; some
/// kernels refuse to watch `memfd` or `MAP_SHARED | MAP_ANONYMOUS` memory without it).
/// Returns 0 or -errno; after a failure, the descriptor must be closed.
static inline int uffd_enable_unmap_events(int fd, int shared_memory) {
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP,
    };
#ifdef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
    if (shared_memory) api.features |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
#else
    if (shared_memory) return -EINVAL;
#endif
    return ioctl(fd, UFFDIO_API, &api) == 0 ? 0 : -errno;
}

/// Registers `[start, start + length)` (page-aligned) in write-protect mode
/// (`UFFDIO_REGISTER`, `UFFDIO_REGISTER_MODE_WP`): no page is ever write-protected, so
/// no fault reaches the descriptor, but the events of the context's features do.
/// Returns 0 or -errno.
static inline int uffd_watch(int fd, uint64_t start, uint64_t length) {
    struct uffdio_register reg = {
        .range = { .start = start, .len = length },
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    return ioctl(fd, UFFDIO_REGISTER, &reg) == 0 ? 0 : -errno;
}

/// Reads up to `capacity` (at most 16) pending events with one `read(2)` and stores the
/// address range each one takes away as `bounds[2 i] ..< bounds[2 i + 1]`: the range
/// unmapped (`UFFD_EVENT_UNMAP`) or whose pages were dropped (`UFFD_EVENT_REMOVE`), or
/// the old place of a moved mapping (`UFFD_EVENT_REMAP`). Any other message (none is
/// asked for) stores an empty range. The kernel lets the thread that caused an event go
/// once the event is read. Returns the number of events, 0 when none is pending, or -errno.
static inline int uffd_read_ranges(int fd, uint64_t *bounds, int capacity) {
    struct uffd_msg messages[16];
    if (capacity > 16) capacity = 16;
    ssize_t got = read(fd, messages, sizeof(struct uffd_msg) * (size_t)capacity);
    if (got < 0) return errno == EAGAIN ? 0 : -errno;
    int count = (int)(got / (ssize_t)sizeof(struct uffd_msg));
    for (int i = 0; i < count; i++) {
        uint64_t start = 0, end = 0;
        switch (messages[i].event) {
        case UFFD_EVENT_UNMAP:
        case UFFD_EVENT_REMOVE:
            start = messages[i].arg.remove.start;
            end = messages[i].arg.remove.end;
            break;
        case UFFD_EVENT_REMAP:
            start = messages[i].arg.remap.from;
            end = messages[i].arg.remap.from + messages[i].arg.remap.len;
            break;
        }
        bounds[2 * i] = start;
        bounds[2 * i + 1] = end;
    }
    return count;
}
