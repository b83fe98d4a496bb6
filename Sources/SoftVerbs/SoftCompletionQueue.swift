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
    /// The channel the queue raises events on; kept alive by the queue.
    public let softChannel: SoftCompletionChannel?

    init(device: SoftVerbs, handle: UInt32, capacity: Int, channel: SoftCompletionChannel?) {
        self.device = device
        self.handle = handle
        self.capacity = capacity
        self.softChannel = channel
    }

    /// The channel the queue raises events on, or `nil` for a queue that is only polled.
    public var channel: (any CompletionChannel)? { softChannel }

    /// Arms the queue for its next completion (with `solicitedOnly`, its next solicited
    /// receive or error). The corresponding C function is `ibv_req_notify_cq`.
    /// - Throws: `EINVAL` for a queue without a channel or a destroyed queue.
    public func requestNotification(solicitedOnly: Bool) throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            guard state.queues[handle] != nil, state.queues[handle]!.channel != nil else {
                throw VerbsError(.requestNotification, errno: EINVAL, "the completion queue has no channel or was destroyed")
            }
            // Arming for all completions stays armed for all until the event.
            let armed = state.queues[handle]!.armedSolicitedOnly
            state.queues[handle]!.armedSolicitedOnly = (armed ?? true) && solicitedOnly
        }
    }

    /// Whether an event for this queue was taken since the last call; clears the mark.
    public func takeNotification() -> Bool {
        device.state.withLock { state in
            defer { state.queues[handle]?.notified = false }
            return state.queues[handle]?.notified ?? false
        }
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
            if let channel = queue.channel {
                state.channels[channel]?.users -= 1
                state.channels[channel]?.events.removeAll { $0 == handle }
            }
            state.queues[handle] = nil
        }
    }

    deinit { try? close() }
}
