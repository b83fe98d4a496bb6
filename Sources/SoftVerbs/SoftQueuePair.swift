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
    /// The PSN its sends start at, chosen at random.
    let packetSequenceNumber = UInt32.random(in: 0..<QueuePairEndpoint.numberLimit)
    /// The sizes it was created with.
    public let capabilities: QueuePairCapabilities

    init(device: SoftVerbs, number: UInt32, capabilities: QueuePairCapabilities) {
        self.device = device
        self.number = number
        self.capabilities = capabilities
    }

    /// The queue pair's number and random starting PSN; LID 0 and a 4096-byte MTU, as a
    /// RoCE port has; and, as its GID, the first 16 bytes of the device's name in UTF-8,
    /// padded with zeros.
    public var endpoint: QueuePairEndpoint {
        QueuePairEndpoint(number: number, packetSequenceNumber: packetSequenceNumber, gid: gid, mtu: .bytes4096)
    }

    /// The device's name as a GID.
    private var gid: [UInt8] {
        let name = device.name.utf8.prefix(16)
        return Array(name) + Array(repeating: 0, count: 16 - name.count)
    }

    /// The current state; `QueuePairState.error` once the queue pair is destroyed. The
    /// corresponding C function is `ibv_query_qp`.
    public var state: QueuePairState {
        device.state.withLock { $0.pairs[number]?.state ?? .error }
    }

    /// Moves the queue pair to `state`, as `QueuePair.modify(to:remote:)` describes. RTR
    /// records the remote's number and PSN, RTS the queue pair's own PSN: when the PSN
    /// a peer expects is not the one its sender starts at, the peer drops every packet
    /// as out of sequence, as a device does, and the sends complete with
    /// `WorkCompletionStatus.retryExceededError`. The corresponding C function is
    /// `ibv_modify_qp`.
    /// - Throws: `EINVAL` for a transition a device refuses, a remote endpoint that
    ///   `QueuePair.modify(to:remote:)` refuses or that is on another device, or a
    ///   destroyed queue pair.
    public func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError) {
        try withPair(.modifyQueuePair) { (soft) throws(VerbsError) in
            if state == .readyToReceive, let remote {
                if let defect = remote.defect { throw VerbsError(.modifyQueuePair, errno: EINVAL, defect) }
                guard remote.gid == gid else {
                    throw VerbsError(.modifyQueuePair, errno: EINVAL, "SoftVerbs connects queue pairs of one device only")
                }
            }
            try soft.modify(number, to: state, remote: remote.map { ($0.number, $0.packetSequenceNumber) },
                            packetSequenceNumber: packetSequenceNumber)
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
