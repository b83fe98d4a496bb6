#if canImport(Glibc)
import Glibc
#endif
import Locking
import Verbs

/// The connection requests waiting at one ``SoftListener``, at most `backlog` of them,
/// and the `eventfd(2)` readable while any waits: what the address space names, so
/// that requesters reach it without holding the listener.
final class SoftRequestQueue: @unchecked Sendable {
    private struct State {
        var pending: [SoftHandshake] = []
        var closed = false
    }

    let device: SoftVerbs
    let backlog: Int
    /// Readable while a request waits (non-blocking); closed with the queue.
    let descriptor: Int32
    private let state = LockedValue(State())

    init(device: SoftVerbs, backlog: Int) throws(VerbsError) {
        self.device = device
        self.backlog = backlog
        descriptor = try makeEventDescriptor(for: .listen)
    }

    deinit { close() }

    /// Queues a request.
    /// - Throws: `ECONNREFUSED` when the queue is closed or holds `backlog` requests.
    func enqueue(_ handshake: SoftHandshake) throws(VerbsError) {
        try state.withLock { (state) throws(VerbsError) in
            guard !state.closed else {
                throw VerbsError(.connect, errno: ECONNREFUSED, "the listener closed", connectionEvent: .rejected(privateData: []))
            }
            guard state.pending.count < backlog else {
                throw VerbsError(.connect, errno: ECONNREFUSED, "the listener's backlog of \(backlog) is full",
                                 connectionEvent: .rejected(privateData: []))
            }
            state.pending.append(handshake)
            SoftVerbsState.signal(descriptor)
        }
    }

    /// Takes the oldest request; `nil` when none waits.
    /// - Throws: `EINVAL` once the queue is closed.
    func take() throws(VerbsError) -> SoftHandshake? {
        try state.withLock { (state) throws(VerbsError) -> SoftHandshake? in
            guard !state.closed else { throw VerbsError(.getConnectionEvent, errno: EINVAL, "the listener is closed") }
            // Drained when the queue is or becomes empty, also after a requester withdrew
            // the last request: a descriptor left readable would make epoll loops spin.
            guard !state.pending.isEmpty else {
                SoftVerbsState.drain(descriptor)
                return nil
            }
            let first = state.pending.removeFirst()
            if state.pending.isEmpty { SoftVerbsState.drain(descriptor) }
            return first
        }
    }

    /// Removes a request whose requester gave up, if it was not taken yet.
    func withdraw(_ handshake: SoftHandshake) {
        state.withLock { state in
            guard !state.closed else { return }
            state.pending.removeAll { $0 === handshake }
            if state.pending.isEmpty { SoftVerbsState.drain(descriptor) }
        }
    }

    /// Closes the queue and its descriptor once, rejecting the requests that were
    /// waiting (their requesters see `ECONNREFUSED`).
    func close() {
        let pending = state.withLock { state -> [SoftHandshake] in
            guard !state.closed else { return [] }
            state.closed = true
            Glibc.close(descriptor)
            defer { state.pending = [] }
            return state.pending
        }
        for handshake in pending { handshake.answer(.rejected(privateData: [])) }
    }
}
