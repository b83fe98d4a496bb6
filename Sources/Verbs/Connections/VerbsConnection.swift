/// A reliable connection between a local queue pair and a peer's, made and watched
/// by a connection manager: librdmacm's `rdma_cm` in the `IBVerbs` backend, an
/// in-process one in `SoftVerbs`.
///
/// The connection owns none of the verbs objects: the caller creates the queue pair
/// (in the reset state) in a protection domain of its choice, so one domain and one
/// memory-region cache serve any number of connections. Making the connection moves
/// the queue pair through INIT, RTR and RTS with the values both sides exchanged;
/// disconnecting moves it to the error state, which flushes what is outstanding.
///
/// Events after the connection is made (the peer disconnecting, the device going
/// away) are taken without blocking with ``takeEvent()``, waited for with
/// ``nextEvent(timeout:)``, or awaited as an asynchronous sequence with
/// ``events(on:)``.
public protocol VerbsConnection: AnyObject, Sendable {
    /// The queue pairs the backend connects.
    associatedtype QueuePairType: QueuePair

    /// Connects `queuePair`, which must be in the reset state, to the listener at
    /// `host` (an IPv4 or IPv6 address) and `port`, sending `parameters` with the
    /// request; returns once the connection is established.
    ///
    /// The corresponding C functions are `rdma_resolve_addr`, `rdma_resolve_route`,
    /// `rdma_connect` and `rdma_establish`.
    /// - Throws: `EINVAL` for an address that is not an IP address, parameters beyond
    ///   their limits, or a queue pair not in the reset state or of another device than
    ///   the one the address is reached through; `ECONNREFUSED` when the peer rejects
    ///   the connection (the error's ``VerbsError/connectionEvent`` holds
    ///   ``ConnectionEvent/rejected(privateData:)`` with the rejection's private data)
    ///   or nothing listens on the port; `EHOSTUNREACH` when the address or route does
    ///   not resolve; `ETIMEDOUT` when a step takes longer than `timeout`. The queue
    ///   pair is back in the reset state and nothing stays allocated.
    static func connect(
        to host: String, port: UInt16, queuePair: QueuePairType, parameters: ConnectionParameters, timeout: Duration
    ) throws(VerbsError) -> Self

    /// The connected queue pair.
    var queuePair: QueuePairType { get }
    /// What the peer sent when the connection was made: its private data and its RDMA
    /// READ depths.
    var peerParameters: ConnectionParameters { get }
    /// The descriptor that is readable while an event waits, in non-blocking mode
    /// (the connection's `rdma_event_channel`).
    var eventFileDescriptor: Int32 { get }
    /// Takes the next event without blocking and acknowledges it; `nil` when none
    /// waits. The corresponding C functions are `rdma_get_cm_event` and
    /// `rdma_ack_cm_event`.
    func takeEvent() throws(VerbsError) -> ConnectionEvent?
    /// Disconnects: the queue pair moves to the error state, and both sides see
    /// ``ConnectionEvent/disconnected``. A second call does nothing. The queue pair
    /// stays the caller's to close. The corresponding C function is `rdma_disconnect`.
    func disconnect() throws(VerbsError)
}

/// A listener for connections on an address and port: `rdma_listen` in the `IBVerbs`
/// backend, a name in the process's own address space in `SoftVerbs`.
public protocol VerbsListener: AnyObject, Sendable {
    /// The requests the listener hands out.
    associatedtype Request: VerbsConnectionRequest

    /// The address the listener is bound to.
    var host: String { get }
    /// The port the listener is bound to (the one chosen when it was bound to port 0).
    var port: UInt16 { get }
    /// The descriptor that is readable while a request waits, in non-blocking mode.
    var eventFileDescriptor: Int32 { get }
    /// Takes the next connection request without blocking; `nil` when none waits.
    /// The corresponding C function is `rdma_get_cm_event` (`RDMA_CM_EVENT_CONNECT_REQUEST`).
    func takeRequest() throws(VerbsError) -> Request?
    /// Stops listening. Requests not yet taken are rejected; connections already
    /// accepted stay up. A second call does nothing. The corresponding C function is
    /// `rdma_destroy_id`.
    func close() throws(VerbsError)
}

/// A peer's request to connect, which the listening side accepts with a queue pair
/// of its own or rejects. A request neither accepted nor rejected is rejected when
/// it is released.
public protocol VerbsConnectionRequest: AnyObject, Sendable {
    /// The connections accepting makes.
    associatedtype Connection: VerbsConnection

    /// What the peer sent: its private data and its RDMA READ depths.
    var peerParameters: ConnectionParameters { get }
    /// The peer's address.
    var peerHost: String { get }

    /// Accepts the request: connects `queuePair`, which must be in the reset state,
    /// sends `parameters` with the reply, and returns once the connection is
    /// established. The corresponding C functions are `rdma_accept` (with the queue
    /// pair moved through `rdma_init_qp_attr`).
    /// - Throws: `EINVAL` for parameters beyond their limits, a queue pair not in the
    ///   reset state or of another device, or a request already answered;
    ///   `ETIMEDOUT` when the peer does not confirm within `timeout`; `ECONNABORTED`
    ///   when the peer gave up. The queue pair is back in the reset state then.
    func accept(
        _ queuePair: Connection.QueuePairType, parameters: ConnectionParameters, timeout: Duration
    ) throws(VerbsError) -> Connection
    /// Rejects the request with `privateData` (at most
    /// ``ConnectionParameters/maxRejectPrivateData`` bytes). The corresponding C
    /// function is `rdma_reject`.
    /// - Throws: `EINVAL` for too much private data or a request already answered.
    func reject(privateData: [UInt8]) throws(VerbsError)
}
