#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// A reliable-connected queue pair of a ``SoftVerbs`` device.
public final class SoftQueuePair: QueuePair, @unchecked Sendable {
    let device: SoftVerbs
    let number: UInt32
    /// The sizes it was created with.
    public let capabilities: QueuePairCapabilities

    init(device: SoftVerbs, number: UInt32, capabilities: QueuePairCapabilities) {
        self.device = device
        self.number = number
        self.capabilities = capabilities
    }

    /// The queue pair's number and, as its GID, the device's name.
    public var endpoint: QueuePairEndpoint { QueuePairEndpoint(number: number, gid: Array(device.name.utf8)) }

    /// The current state; `QueuePairState.error` once the queue pair is destroyed. The
    /// corresponding C function is `ibv_query_qp`.
    public var state: QueuePairState {
        device.state.withLock { $0.pairs[number]?.state ?? .error }
    }

    /// Moves the queue pair to `state`, as `QueuePair.modify(to:remote:)` describes. The
    /// corresponding C function is `ibv_modify_qp`.
    /// - Throws: `EINVAL` for a transition a device refuses, a remote endpoint on another
    ///   device, or a destroyed queue pair.
    public func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError) {
        try withPair(.modifyQueuePair) { (soft) throws(VerbsError) in
            if let remote, remote.gid != Array(device.name.utf8) {
                throw VerbsError(.modifyQueuePair, errno: EINVAL, "SoftVerbs connects queue pairs of one device only")
            }
            try soft.modify(number, to: state, remote: remote?.number)
        }
    }

    /// Posts a send-queue request. Requests run in order at post time: the data moves
    /// and the completion is queued before the call returns, unless a request needs a
    /// receive the peer has not posted yet, and then it runs when the peer posts one.
    /// The corresponding C function is `ibv_post_send`.
    /// - Throws: `EINVAL` for a destroyed queue pair, and what `QueuePair.postSend(_:)` lists.
    public func postSend(_ request: SendWorkRequest) throws(VerbsError) {
        try withPair(.postSend) { (soft) throws(VerbsError) in try soft.postSend(number, request) }
    }

    /// Posts a chain of send-queue requests in order, as one `ibv_post_send` call with
    /// linked requests does.
    /// - Throws: What ``postSend(_:)`` throws for the first refused request, with
    ///   `VerbsError.failedRequest` set to its position; the requests before it were
    ///   posted (and have run as far as they could), it and those after it were not.
    public func postSend(chain requests: UnsafeBufferPointer<SendWorkRequest>) throws(VerbsError) {
        try withPair(.postSend) { (soft) throws(VerbsError) in
            for (index, request) in requests.enumerated() {
                do throws(VerbsError) {
                    try soft.postSend(number, request)
                } catch {
                    var refused = error
                    refused.failedRequest = index
                    throw refused
                }
            }
        }
    }

    /// Posts a receive-queue request. The corresponding C function is `ibv_post_recv`.
    /// - Throws: `EINVAL` for a destroyed queue pair, and what `QueuePair.postReceive(_:)`
    ///   lists.
    public func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError) {
        try withPair(.postReceive) { (soft) throws(VerbsError) in try soft.postReceive(number, request) }
    }

    /// Destroys the queue pair; a second call does nothing. The corresponding C function is
    /// `ibv_destroy_qp`.
    /// - Throws: `EBUSY` when an injected ``SoftVerbsFault/destroyQueuePair(nth:)`` refuses the destruction.
    public func close() throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            if state.pairs[number] != nil, state.faults.destroyFails() {
                throw VerbsError(.destroyQueuePair, errno: EBUSY, "injected destruction failure")
            }
            state.destroyPair(number)
        }
    }

    deinit { device.state.withLock { $0.destroyPair(number) } }

    private func withPair(_ call: VerbsCall, _ body: (inout SoftVerbsState) throws(VerbsError) -> Void) throws(VerbsError) {
        try device.state.withLock { (state) throws(VerbsError) in
            guard state.pairs[number] != nil else { throw VerbsError(call, errno: EINVAL, "the queue pair was destroyed") }
            try body(&state)
        }
    }
}
