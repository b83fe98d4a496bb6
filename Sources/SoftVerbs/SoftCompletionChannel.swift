#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// A completion channel of a ``SoftVerbs`` device: an `eventfd(2)` that is readable
/// while events of its queues wait, so callers poll, `epoll` or await it exactly as
/// they would a libibverbs `ibv_comp_channel`.
public final class SoftCompletionChannel: CompletionChannel, @unchecked Sendable {
    let device: SoftVerbs
    let handle: UInt32
    /// The descriptor that is readable while an event waits (non-blocking).
    public let fileDescriptor: Int32

    init(device: SoftVerbs, handle: UInt32, fileDescriptor: Int32) {
        self.device = device
        self.handle = handle
        self.fileDescriptor = fileDescriptor
    }

    /// Takes every waiting event and marks each named queue notified; the count. The
    /// corresponding C functions are `ibv_get_cq_event` and `ibv_ack_cq_events`.
    /// - Throws: `EINVAL` once the channel is destroyed.
    public func takeEvents() throws(VerbsError) -> Int {
        try device.state.withLock { (state) throws(VerbsError) -> Int in
            guard state.channels[handle] != nil else {
                throw VerbsError(.getCompletionEvent, errno: EINVAL, "the completion channel was destroyed")
            }
            return state.takeEvents(handle)
        }
    }

    /// Destroys the channel and closes its descriptor; a second call does nothing. The
    /// corresponding C function is `ibv_destroy_comp_channel`.
    /// - Throws: `EBUSY` while a completion queue still uses it.
    public func close() throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            guard let channel = state.channels[handle] else { return }
            guard channel.users == 0 else {
                throw VerbsError(.destroyCompletionChannel, errno: EBUSY, "\(channel.users) completion queues still use it")
            }
            state.channels[handle] = nil
            Glibc.close(channel.descriptor)
        }
    }

    deinit { try? close() }
}
