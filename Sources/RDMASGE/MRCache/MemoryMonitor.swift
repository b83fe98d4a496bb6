#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CUserfaultfd
import Synchronization

/// The process's memory monitor: tells every subscribed ``MRCache`` which address ranges
/// lost their memory, so that no lookup after an `munmap` returns gets a region that
/// pins the pages that were there.
///
/// One userfaultfd for the process, used only as an event source. The cache *watches*
/// the pages of each region it registers for user memory (`UFFDIO_REGISTER` in
/// write-protect mode only): the monitor never write-protects a page, so no page fault
/// is ever delivered to it (registering for missing pages would make it serve the
/// program's own faults, and hang or fail them), but the context's events still are,
/// for every watched mapping:
/// - `UFFD_EVENT_UNMAP`: `munmap`, `brk` shrinking the heap (how `free` trims it), a
///   `MAP_FIXED` mapping over the range, `mremap` shrinking it;
/// - `UFFD_EVENT_REMOVE`: `madvise` `MADV_DONTNEED`, `MADV_FREE`, `MADV_REMOVE` (how
///   `free` gives back the pages of a thread arena);
/// - `UFFD_EVENT_REMAP`: `mremap` moving the mapping (the old range is what goes).
///
/// The kernel checks the context's features, not the registration mode, before it sends
/// these (verified on Linux 6.18; the semantics date from 5.7, when anonymous memory got
/// write-protect registration). The monitor also asks for write-protect registration of
/// shared memory (`UFFD_FEATURE_WP_HUGETLBFS_SHMEM`, Linux 5.19: `PagePool`'s `memfd`
/// pages), and for nothing else.
///
/// ## Why a lookup after an unmap never sees the old region
///
/// The thread that unmaps watched memory does not return from the system call until the
/// monitor has *read* the event. The monitor thread sleeps in `poll(2)`; when woken it
/// sets ``MemoryMonitorInbox/busy`` in every subscriber's inbox (sequentially
/// consistent), then reads the events (non-blocking), posts each range to every inbox
/// whose cache watched memory near it (``MemoryMonitorInbox/pending``), and clears `busy`
/// (releasing). The unmapping thread is woken by that read, which comes after the `busy`
/// stores, and the kernel's wake-up orders the two threads, so that thread, and any
/// thread that synchronises with it afterwards, loads `busy` or, later, `pending` from
/// the inbox. ``MRCache`` loads the flag word before every hit; when a bit is set it
/// waits until `busy` clears, then drains the ranges under its lock and invalidates them
/// (``MRCache/invalidate(_:)``) before it looks up. A lookup that races with an unmap
/// it has not synchronised with may still hit: the program itself could not tell which
/// came first.
///
/// ## Why nothing deadlocks
///
/// The monitor thread takes no lock, allocates nothing and frees nothing while it runs:
/// a thread holding a cache's lock may free memory, trim the heap and wait in `munmap`
/// for the monitor, which must therefore never wait for that lock. Waits run one way
/// only: a lookup waits for `busy` to clear, and the monitor's `busy` stretch is one
/// non-blocking read and stores to inboxes.
///
/// ## Late events
///
/// An event is read some time after its unmap: in between, new memory may be mapped at
/// the same address and registered, and the late event then invalidates that region.
/// Harmless (a registration too many), but frequent when the monitor thread waits for a
/// processor: so a miss first waits until the monitor has read what the kernel queued
/// (``catchUp(_:)``) and drains it. What remains is the instant between the unmap and the
/// kernel queueing its event.
///
/// ## Subscribers
///
/// A fixed table of ``subscriberCapacity`` inbox addresses. ``subscribe(_:)`` fills a
/// slot and then waits until the monitor is not reading, so every later read marks the
/// new inbox `busy` first; ``unsubscribe(_:)`` empties the slot and waits the same way,
/// after which the monitor no longer touches the inbox and the cache may free it. A cache
/// that finds the table full runs unmonitored.
///
/// ## What it cannot see
///
/// Ranges the kernel refuses to watch (file mappings other than shared memory, mappings a
/// userfaultfd of the program's own already watches, ranges not fully mapped): their
/// regions are *unmonitored* and never reused (see ``MRCache``). A watch is left in place
/// when its region goes: unwatching would need to know that no other region of any cache
/// shares the pages; the cost is one event round trip (a switch to the monitor thread)
/// for a later unmap there, and the watch ends with the mapping anyway.
///
/// ## fork
///
/// The monitor does not ask for `UFFD_EVENT_FORK`: a child's mappings are not watched,
/// and the child has no monitor thread, so a child's unmaps do not disturb the parent,
/// and a child must not use a cache it inherited (rdma-core's rule for registered
/// memory anyway: a child may not use its parent's verbs resources).
final class MemoryMonitor: @unchecked Sendable {
    /// The process's monitor, started by the first cache that asks; `nil` when the
    /// kernel refuses a userfaultfd (too old, `vm.unprivileged_userfaultfd` with an old
    /// kernel, seccomp), and every cache then runs unmonitored.
    static let shared: MemoryMonitor? = MemoryMonitor()
    /// The most caches monitored at once.
    static let subscriberCapacity = 256
    /// Events read at once (the shim's limit).
    private static let batch = 16

    private let descriptor: Int32
    /// Set while the monitor reads and posts (sequentially consistent), for ``subscribe(_:)``
    /// and ``unsubscribe(_:)``.
    private let isReading = Atomic<Bool>(false)
    /// Inbox addresses, 0 for a free slot.
    private let subscribers: UnsafeMutablePointer<Atomic<UInt>>
    /// Where a read puts its ranges: allocated once, so the monitor thread never allocates.
    private let bounds: UnsafeMutablePointer<UInt64>

    /// Opens the userfaultfd, user-mode faults only first (what an unprivileged process
    /// may open since Linux 5.11), then without the flag on kernels that reject it; asks
    /// for the events, with shared memory first, then without on kernels before 5.19;
    /// and starts the monitor thread.
    private init?() {
        var opened: Int32?
        for sharedMemory: Int32 in [1, 0] where opened == nil {
            var descriptor = uffd_open(1)
            if descriptor == -EINVAL { descriptor = uffd_open(0) }
            guard descriptor >= 0 else { return nil }
            if uffd_enable_unmap_events(descriptor, sharedMemory) == 0 { opened = descriptor } else { close(descriptor) }
        }
        guard let opened else { return nil }
        descriptor = opened
        subscribers = .allocate(capacity: Self.subscriberCapacity)
        for slot in 0..<Self.subscriberCapacity { (subscribers + slot).initialize(to: Atomic(0)) }
        bounds = .allocate(capacity: 2 * Self.batch)
        bounds.initialize(repeating: 0, count: 2 * Self.batch)
        // The monitor lives as long as the process.
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            Unmanaged<MemoryMonitor>.fromOpaque(context!).takeUnretainedValue().run()
            return nil
        }, context)
        precondition(started == 0, "pthread_create failed for the memory monitor (\(started))")
        pthread_detach(thread)
    }

    /// Lists `inbox`; false when the table is full (the cache then runs unmonitored).
    func subscribe(_ inbox: MemoryMonitorInbox) -> Bool {
        for slot in 0..<Self.subscriberCapacity
        where subscribers[slot].compareExchange(expected: 0, desired: inbox.address, ordering: .sequentiallyConsistent).exchanged {
            waitUntilNotReading()
            return true
        }
        return false
    }

    /// Takes `inbox` off the table; when this returns, the monitor no longer touches it.
    func unsubscribe(_ inbox: MemoryMonitorInbox) {
        for slot in 0..<Self.subscriberCapacity
        where subscribers[slot].compareExchange(expected: inbox.address, desired: 0, ordering: .sequentiallyConsistent).exchanged {
            waitUntilNotReading()
            return
        }
        preconditionFailure("unsubscribing an inbox the memory monitor does not list")
    }

    /// Watches the pages of `range` (page-aligned) for unmap, remove and remap events,
    /// posting them to `inbox` (whose watched span it widens first). False when the kernel
    /// refuses (a file mapping, a range not fully mapped, a range another userfaultfd
    /// watches): the range is then unmonitored.
    func watch(_ range: Range<UInt>, for inbox: MemoryMonitorInbox) -> Bool {
        inbox.widenWatchedSpan(range)
        return uffd_watch(descriptor, UInt64(range.lowerBound), UInt64(range.count)) == 0
    }

    /// Waits until the monitor has read and posted to `inbox` every event the kernel
    /// queued before the call: a miss calls it before it registers, so that a late event
    /// for memory unmapped before the miss (while the monitor had not yet run) does not
    /// invalidate the region about to be registered over new memory at that address.
    /// Only the events queued between an unmap and the monitor's read are waited for.
    func catchUp(_ inbox: MemoryMonitorInbox) {
        while true {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 0) == 0 && !inbox.isBusy { return }
            sched_yield()
        }
    }

    // MARK: The monitor thread

    private func waitUntilNotReading() {
        while isReading.load(ordering: .sequentiallyConsistent) { sched_yield() }
    }

    private func forEachSubscriber(_ body: (MemoryMonitorInbox) -> Void) {
        for slot in 0..<Self.subscriberCapacity {
            let address = subscribers[slot].load(ordering: .sequentiallyConsistent)
            if address != 0 { body(MemoryMonitorInbox(address: address)) }
        }
    }

    /// Sleeps until events are pending, then reads and posts them, forever.
    private func run() {
        while true {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, -1)
            precondition(ready >= 0 || errno == EINTR, "poll(2) on the memory monitor's userfaultfd failed (errno \(errno))")
            guard ready > 0 else { continue }
            isReading.store(true, ordering: .sequentiallyConsistent)
            forEachSubscriber { $0.markBusy() }
            let count = uffd_read_ranges(descriptor, bounds, Int32(Self.batch))
            precondition(count >= 0, "reading the memory monitor's userfaultfd failed (errno \(-count))")
            for event in 0..<Int(count) {
                let start = UInt(bounds[2 * event]), end = UInt(bounds[2 * event + 1])
                if start < end { forEachSubscriber { $0.post(start..<end) } }
            }
            forEachSubscriber { $0.clearBusy() }
            isReading.store(false, ordering: .sequentiallyConsistent)
        }
    }
}
