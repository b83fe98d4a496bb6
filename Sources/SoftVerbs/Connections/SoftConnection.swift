#if canImport(Glibc)
import Glibc
#endif
import Verbs

/// A reliable connection between two queue pairs of one ``SoftVerbs`` device, made
/// through a ``SoftListener``: the in-process equivalent of a connected `rdma_cm_id`.
///
/// ``connect(to:port:queuePair:parameters:timeout:)`` queues a request at the listener
/// bound to the address and port and blocks until the listening side accepts it
/// (``SoftConnectionRequest/accept(_:parameters:timeout:)``, which moves both queue
/// pairs RESET → INIT → RTR → RTS) or rejects it. Each side then holds a connection
/// whose first event is `ConnectionEvent.established`.
///
/// ``disconnect()`` on either side moves both queue pairs to the error state, which
/// flushes what is outstanding with `WorkCompletionStatus.workRequestFlushError`, and
/// both sides see `ConnectionEvent.disconnected`. Releasing a connection that is still
/// up disconnects it, as destroying a connected `rdma_cm_id` does. SoftVerbs raises no
/// `ConnectionEvent.deviceRemoved`: a simulated device does not go away.
///
/// SoftVerbs connects queue pairs of one device only: both sides' queue pairs must
/// belong to the listener's device.
public final class SoftConnection: VerbsConnection, @unchecked Sendable {
    /// The connected queue pair.
    public let queuePair: SoftQueuePair
    /// What the peer sent when the connection was made: its private data and its RDMA
    /// READ depths (the accepting side's depths capped by what the requester offered).
    public let peerParameters: ConnectionParameters
    private let link: SoftConnectionLink
    private let side: SoftConnectionLink.Side

    init(queuePair: SoftQueuePair, peerParameters: ConnectionParameters, link: SoftConnectionLink,
         side: SoftConnectionLink.Side) {
        self.queuePair = queuePair
        self.peerParameters = peerParameters
        self.link = link
        self.side = side
    }

    deinit { link.disconnect() }

    /// Connects `queuePair`, which must be in the reset state, to the ``SoftListener``
    /// bound to `host` (an IPv4 or IPv6 address) and `port`, sending `parameters` with
    /// the request; blocks without spinning until the listening side answers, and
    /// returns once the connection is established.
    ///
    /// When `timeout` passes before the listening side took up the request, the
    /// request is withdrawn; an accept already under way is waited for. The
    /// corresponding C functions are `rdma_resolve_addr`, `rdma_resolve_route`,
    /// `rdma_connect` and `rdma_establish`; this is their in-process equivalent.
    /// - Throws: `EINVAL` for a `host` that is no IP address, parameters beyond their
    ///   limits (private data beyond `ConnectionParameters.maxRequestPrivateData`
    ///   bytes), a queue pair not in the reset state, or a listener on another device
    ///   than the queue pair's; `ECONNREFUSED` with `VerbsError.connectionEvent`
    ///   `ConnectionEvent.rejected(privateData:)` when nothing listens on the port
    ///   (no private data), the listener's backlog is full or it closes (no private
    ///   data), or the listening side rejects the request (its private data), and with
    ///   `ConnectionEvent.connectionError` when its accept failed; `ETIMEDOUT` when
    ///   no answer came within `timeout`. The queue pair is in the reset state then.
    public static func connect(
        to host: String, port: UInt16, queuePair: SoftQueuePair, parameters: ConnectionParameters = ConnectionParameters(),
        timeout: Duration = .seconds(10)
    ) throws(VerbsError) -> SoftConnection {
        try parameters.validate(for: .connect, privateDataLimit: ConnectionParameters.maxRequestPrivateData)
        let address = try SoftAddress(parsing: host, call: .resolveAddress)
        guard queuePair.state == .reset else {
            throw VerbsError(.connect, errno: EINVAL, "the queue pair is in the \(queuePair.state) state, not RESET")
        }
        guard let listener = SoftAddressSpace.queue(for: address, port: port) else {
            throw VerbsError(.connect, errno: ECONNREFUSED, "nothing listens on \(host) port \(port)",
                             connectionEvent: .rejected(privateData: []))
        }
        guard listener.device === queuePair.device else {
            throw VerbsError(.connect, errno: EINVAL, "the listener on \(host) port \(port) uses another device than the "
                             + "queue pair's; SoftVerbs connects queue pairs of one device only")
        }
        let handshake = try SoftHandshake(queuePair: queuePair, parameters: parameters, requesterHost: host)
        try listener.enqueue(handshake)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            let phase = handshake.phase.withLock { (phase) -> SoftHandshake.Phase in
                if case .waiting = phase, ContinuousClock.now >= deadline { phase = .withdrawn }
                return phase
            }
            switch phase {
            case .waiting:
                _ = try sleepUntilReadable(handshake.descriptor, until: deadline, call: .connect)
            case .accepting:
                _ = try sleepUntilReadable(handshake.descriptor, until: nil, call: .connect)
            case .accepted(let connection):
                return connection
            case .rejected(let data):
                throw VerbsError(.connect, errno: ECONNREFUSED, "the peer rejected the connection",
                                 connectionEvent: .rejected(privateData: data))
            case .failed(let error):
                throw error
            case .withdrawn:
                listener.withdraw(handshake)
                throw VerbsError(.connect, errno: ETIMEDOUT, "no answer within \(timeout)")
            }
        }
    }

    /// The descriptor that is readable while an event waits (an `eventfd(2)`,
    /// non-blocking); it stays open while either side of the connection exists.
    public var eventFileDescriptor: Int32 { link.descriptors[side] }

    /// Takes the next event without blocking; `nil` when none waits. The first is
    /// `ConnectionEvent.established`, then `ConnectionEvent.disconnected` once
    /// either side disconnects. The corresponding C functions are `rdma_get_cm_event`
    /// and `rdma_ack_cm_event`; this is their in-process equivalent.
    public func takeEvent() -> ConnectionEvent? { link.takeEvent(side) }

    /// Disconnects: both queue pairs move to the error state, flushing what is
    /// outstanding, and both sides see `ConnectionEvent.disconnected`. A second call,
    /// on either side, does nothing. The queue pair stays the caller's to close. The
    /// corresponding C function is `rdma_disconnect`; this is its in-process equivalent.
    public func disconnect() { link.disconnect() }
}
