#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex, for state that threads share.
///
/// Not `Synchronization.Mutex`: on Linux it hands ownership over inside the kernel
/// (priority-inheritance futexes), which ThreadSanitizer cannot see, so every
/// contended section would be reported as a race and real races would hide among
/// them. ThreadSanitizer intercepts pthread mutexes.
///
/// The value lives in its own allocation rather than in a stored property, so that
/// ``withLock(_:)`` hands it out `inout` without the dynamic exclusivity check a
/// class's stored property costs: the mutex already gives the exclusivity.
@usableFromInline
package final class LockedValue<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    package init(_ initial: consuming Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, under the lock.
    @inline(__always)
    package func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
