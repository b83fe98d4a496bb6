#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// A completion queue of a ``SoftVerbs`` device.
///
/// SoftVerbs refuses a queue pair whose requests could overrun its completion
/// queues (every request holds an entry until it is polled), so a queue never
/// overflows.
public final class SoftCompletionQueue: CompletionQueue, @unchecked Sendable {
    let device: SoftVerbs
    let handle: UInt32
    /// The number of entries the queue holds.
    public let capacity: Int

    init(device: SoftVerbs, handle: UInt32, capacity: Int) {
        self.device = device
        self.handle = handle
        self.capacity = capacity
    }

    /// Moves up to `completions.count` completions, oldest first, into `completions` and
    /// returns how many it moved. Never blocks. The corresponding C function is `ibv_poll_cq`.
    /// - Throws: `EINVAL` once the queue is destroyed.
    public func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        try device.state.withLock { (state) throws(VerbsError) -> Int in
            guard state.queues[handle] != nil else {
                throw VerbsError(.pollCompletionQueue, errno: EINVAL, "the completion queue was destroyed")
            }
            return state.poll(handle, into: completions)
        }
    }

    /// Destroys the queue; a second call does nothing. The corresponding C function is
    /// `ibv_destroy_cq`.
    /// - Throws: `EBUSY` while a queue pair still reports to it.
    public func close() throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            guard let queue = state.queues[handle] else { return }
            guard queue.users == 0 else {
                throw VerbsError(.destroyCompletionQueue, errno: EBUSY, "\(queue.users) queue pairs still report to it")
            }
            state.queues[handle] = nil
        }
    }

    deinit { try? close() }
}
