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
    public let capacity: Int

    init(device: SoftVerbs, handle: UInt32, capacity: Int) {
        self.device = device
        self.handle = handle
        self.capacity = capacity
    }

    public func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        try device.state.withLock { (state) throws(VerbsError) -> Int in
            guard state.queues[handle] != nil else {
                throw VerbsError(.pollCompletionQueue, errno: EINVAL, "the completion queue was destroyed")
            }
            return state.poll(handle, into: completions)
        }
    }

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
