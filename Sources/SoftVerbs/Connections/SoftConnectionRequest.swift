#if canImport(Glibc)
import Glibc
#endif
import Verbs

/// A peer's request to connect, taken from a ``SoftListener``: the in-process
/// equivalent of the `rdma_cm_id` an `RDMA_CM_EVENT_CONNECT_REQUEST` event carries.
///
/// Accept it with a queue pair of the listener's device, or reject it; a request
/// released without an answer is rejected (with no private data).
public final class SoftConnectionRequest: VerbsConnectionRequest, @unchecked Sendable {
    private let handshake: SoftHandshake
    private let device: SoftVerbs

    init(handshake: SoftHandshake, device: SoftVerbs) {
        self.handshake = handshake
        self.device = device
    }

    deinit { handshake.answer(.rejected(privateData: [])) }

    /// What the peer sent: its private data and its RDMA READ depths.
    public var peerParameters: ConnectionParameters { handshake.parameters }

    /// The peer's address. Both ends of an in-process connection are on this host, so
    /// it is the address the peer connected to.
    public var peerHost: String { handshake.requesterHost }

    /// Accepts the request: moves `queuePair` and the peer's queue pair RESET → INIT →
    /// RTR → RTS, connected to each other, sends `parameters` with the reply, and
    /// returns this side of the connection, established.
    ///
    /// The depths this side sends are capped by what the peer offered, as the
    /// connection manager caps them: `initiatorDepth` by the peer's
    /// `responderResources`, `responderResources` by the peer's `initiatorDepth`. The
    /// peer's ``SoftConnection/peerParameters`` are `parameters` so capped.
    ///
    /// The in-process handshake needs no confirmation from the peer, so `timeout` never
    /// runs out. The corresponding C function is `rdma_accept`; this is its in-process
    /// equivalent.
    /// - Throws: `EINVAL` for parameters beyond their limits (private data beyond
    ///   `ConnectionParameters.maxReplyPrivateData` bytes), a queue pair not in the
    ///   reset state or of another device than the listener's, or a request already
    ///   answered; `ECONNABORTED` when the peer gave up waiting; a queue pair's refused
    ///   transition. Then both queue pairs are back in the reset state (the peer's
    ///   ``SoftConnection/connect(to:port:queuePair:parameters:timeout:)`` fails with
    ///   `ECONNREFUSED` and `ConnectionEvent.connectionError`), and nothing changed
    ///   when the parameters or the queue pair were refused.
    public func accept(
        _ queuePair: SoftQueuePair, parameters: ConnectionParameters = ConnectionParameters(),
        timeout: Duration = .seconds(10)
    ) throws(VerbsError) -> SoftConnection {
        try parameters.validate(for: .accept, privateDataLimit: ConnectionParameters.maxReplyPrivateData)
        guard queuePair.device === device else {
            throw VerbsError(.accept, errno: EINVAL, "the queue pair belongs to another device than the listener's; "
                             + "SoftVerbs connects queue pairs of one device only")
        }
        guard queuePair.state == .reset else {
            throw VerbsError(.accept, errno: EINVAL, "the queue pair is in the \(queuePair.state) state, not RESET")
        }
        try beginAccepting()
        var reply = parameters
        reply.initiatorDepth = min(parameters.initiatorDepth, handshake.parameters.responderResources)
        reply.responderResources = min(parameters.responderResources, handshake.parameters.initiatorDepth)
        let requester = handshake.queuePair
        do throws(VerbsError) {
            for state in [QueuePairState.initialized, .readyToReceive, .readyToSend] {
                try queuePair.modify(to: state, remote: state == .readyToReceive ? requester.endpoint : nil)
                try requester.modify(to: state, remote: state == .readyToReceive ? queuePair.endpoint : nil)
            }
            let link = try SoftConnectionLink(device: device, requester: requester.number, acceptor: queuePair.number)
            handshake.finishAccepting(.accepted(SoftConnection(queuePair: requester, peerParameters: reply, link: link, side: 0)))
            return SoftConnection(queuePair: queuePair, peerParameters: handshake.parameters, link: link, side: 1)
        } catch {
            try? queuePair.modify(to: .reset, remote: nil)
            try? requester.modify(to: .reset, remote: nil)
            let failure = VerbsError(.accept, errno: error.errno, "connecting the queue pairs failed: \(error.reason)")
            handshake.finishAccepting(.failed(VerbsError(
                .connect, errno: ECONNREFUSED, "the peer's accept failed: \(error.reason)", connectionEvent: .connectionError)))
            throw failure
        }
    }

    /// Rejects the request with `privateData`; the peer's connect fails with
    /// `ECONNREFUSED` and `ConnectionEvent.rejected(privateData:)` carrying it. A
    /// request whose peer already gave up is dropped. The corresponding C function is
    /// `rdma_reject`; this is its in-process equivalent.
    /// - Throws: `EINVAL` for more than `ConnectionParameters.maxRejectPrivateData`
    ///   bytes, or a request already answered.
    public func reject(privateData: [UInt8]) throws(VerbsError) {
        guard privateData.count <= ConnectionParameters.maxRejectPrivateData else {
            throw VerbsError(.reject, errno: EINVAL,
                             "\(privateData.count) bytes of private data; at most \(ConnectionParameters.maxRejectPrivateData) fit")
        }
        if handshake.answer(.rejected(privateData: privateData)) { return }
        guard case .withdrawn = handshake.phase.withLock({ $0 }) else {
            throw VerbsError(.reject, errno: EINVAL, "the request was already answered")
        }
    }

    /// Moves the handshake from waiting to accepting, so that the peer waits for the outcome.
    /// - Throws: `ECONNABORTED` when the peer gave up; `EINVAL` when already answered.
    private func beginAccepting() throws(VerbsError) {
        try handshake.phase.withLock { (phase) throws(VerbsError) in
            switch phase {
            case .waiting: phase = .accepting
            case .withdrawn: throw VerbsError(.accept, errno: ECONNABORTED, "the peer gave up waiting")
            default: throw VerbsError(.accept, errno: EINVAL, "the request was already answered")
            }
        }
    }
}
