#if RDMA
import CVerbs
import Glibc
import Locking
import Verbs

/// A reliable connection made by librdmacm (`rdma_cm`) between a queue pair of this
/// process and a peer's, on this machine or another: the client side made with
/// ``connect(to:port:queuePair:parameters:timeout:)``, the server side by
/// ``RDMAConnectionRequest/accept(_:parameters:timeout:)`` on a request an
/// ``RDMAListener`` received.
///
/// The queue pair is the caller's ``IBVerbsQueuePair``, made in any protection domain
/// of the device the peer's address is reached through: the connection manager runs
/// in its application-managed queue-pair mode. It resolves the address and the route,
/// exchanges the connection messages (REQ, REP, RTU) with their private data, and the
/// queue pair moves RESET → INIT → RTR → RTS with the attributes `rdma_init_qp_attr`
/// gives (the PSNs both sides chose, the path, the MTU, the RDMA READ depths). So one
/// protection domain, and one memory-region cache over it, serve any number of
/// connections.
///
/// Each connection has an event channel of its own; its descriptor is
/// ``eventFileDescriptor``. The first event is always `ConnectionEvent/established`.
/// When the peer disconnects, taking `ConnectionEvent/disconnected` answers the
/// peer's request and moves the queue pair to the error state.
public final class RDMAConnection: VerbsConnection, @unchecked Sendable {
    /// The connected queue pair; it stays the caller's to close.
    public let queuePair: IBVerbsQueuePair
    /// What the peer sent when the connection was made. Over InfiniBand and RoCE the
    /// connection messages have fixed sizes, so the private data comes padded with zero
    /// bytes to 56 (a request) or 196 (a reply) bytes, as librdmacm reports it: carry
    /// the length inside the data when it matters.
    public let peerParameters: ConnectionParameters
    /// The peer's address.
    public let peerHost: String
    private let channel: ConnectionManagerChannel
    private let state: LockedValue<State>

    private struct State {
        var id: IBVerbsHandle<rdma_cm_id>?
        /// Events made by the library rather than read from the channel (the first,
        /// `ConnectionEvent/established`).
        var pending: [ConnectionEvent] = [.established]
        var disconnected = false
    }

    /// Takes over `id` (established) and its `channel`.
    init(id: UnsafeMutablePointer<rdma_cm_id>, channel: ConnectionManagerChannel, queuePair: IBVerbsQueuePair,
         peerParameters: ConnectionParameters) {
        self.queuePair = queuePair
        self.channel = channel
        self.peerParameters = peerParameters
        self.peerHost = IBVerbsCalls.peerAddress(id)?.host ?? "?"
        self.state = LockedValue(State(id: IBVerbsHandle(id)))
    }

    /// Connects `queuePair` (in the reset state, made on the device the address is
    /// reached through) to the ``RDMAListener`` or other `rdma_cm` listener at `host`
    /// and `port`, as `VerbsConnection/connect(to:port:queuePair:parameters:timeout:)`
    /// describes. Every step (address, route, the peer's reply) is bounded by
    /// `timeout`. The corresponding C functions are `rdma_create_id`,
    /// `rdma_resolve_addr`, `rdma_resolve_route`, `rdma_connect`, `rdma_init_qp_attr`
    /// with `ibv_modify_qp`, and `rdma_establish`.
    public static func connect(
        to host: String, port: UInt16, queuePair: IBVerbsQueuePair, parameters: ConnectionParameters = ConnectionParameters(),
        timeout: Duration = .seconds(10)
    ) throws(VerbsError) -> RDMAConnection {
        try parameters.validate(for: .connect, privateDataLimit: ConnectionParameters.maxRequestPrivateData)
        guard queuePair.state == .reset else {
            throw VerbsError(.connect, errno: EINVAL, "queue pair \(queuePair.number) is \(queuePair.state), not RESET")
        }
        let destination = try SocketAddress(host: host, port: port, call: .resolveAddress)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let channel = try ConnectionManagerChannel()
        let id = try IBVerbsCalls.createID(channel.channel)
        do throws(VerbsError) {
            try IBVerbsCalls.resolveAddress(id, destination, timeoutMilliseconds: max(1, milliseconds))
            _ = try channel.expect(RDMA_CM_EVENT_ADDR_RESOLVED, until: deadline, call: .resolveAddress)
            try queuePair.checkDevice(of: id, call: .resolveAddress)
            try IBVerbsCalls.resolveRoute(id, timeoutMilliseconds: max(1, milliseconds))
            _ = try channel.expect(RDMA_CM_EVENT_ROUTE_RESOLVED, until: deadline, call: .resolveRoute)
            try IBVerbsCalls.connect(id, queuePair.connectionParameters(parameters), privateData: parameters.privateData)
            let reply = try channel.expect(RDMA_CM_EVENT_CONNECT_RESPONSE, until: deadline, call: .connect)
            try queuePair.ready(through: id)
            // With the queue pair the application's, the reply comes as CONNECT_RESPONSE
            // and `rdma_establish` (the RTU) completes the connection: no event follows.
            try IBVerbsCalls.establish(id)
            return RDMAConnection(id: id, channel: channel, queuePair: queuePair, peerParameters: reply.peer)
        } catch {
            try? IBVerbsCalls.destroyID(id)
            try? queuePair.modify(to: .reset, remote: nil)
            throw error
        }
    }

    /// The connection's event-channel descriptor (non-blocking).
    public var eventFileDescriptor: Int32 { channel.descriptor }

    /// Takes the next event, if any. Taking `ConnectionEvent/disconnected` when the
    /// peer disconnected answers it (`rdma_disconnect`) and moves the queue pair to the
    /// error state. The corresponding C functions are `rdma_get_cm_event` and
    /// `rdma_ack_cm_event`.
    public func takeEvent() throws(VerbsError) -> ConnectionEvent? {
        try state.withLock { (state) throws(VerbsError) -> ConnectionEvent? in
            if !state.pending.isEmpty { return state.pending.removeFirst() }
            guard let event = try channel.take()?.connectionEvent else { return nil }
            if event.endsConnection { try finish(&state) }
            return event
        }
    }

    /// Disconnects: the queue pair moves to the error state and the peer is told; this
    /// side then sees `ConnectionEvent/disconnected` too. A second call does nothing.
    /// The corresponding C function is `rdma_disconnect`.
    public func disconnect() throws(VerbsError) {
        try state.withLock { (state) throws(VerbsError) in try finish(&state) }
    }

    /// Sends or answers the disconnect request (once) and flushes the queue pair.
    private func finish(_ state: inout State) throws(VerbsError) {
        guard !state.disconnected, let id = state.id else { return }
        state.disconnected = true
        try? queuePair.modify(to: .error, remote: nil)
        try IBVerbsCalls.disconnect(id.pointer)
    }

    deinit {
        state.withLock { state in
            if let id = state.id { try? IBVerbsCalls.destroyID(id.pointer) }
            state.id = nil
        }
    }
}

extension IBVerbsQueuePair {
    /// Moves the queue pair to INIT, RTR and RTS with the attributes the connection
    /// manager gives for `id`. The corresponding C functions are `rdma_init_qp_attr`
    /// and `ibv_modify_qp`.
    func ready(through id: UnsafeMutablePointer<rdma_cm_id>) throws(VerbsError) {
        for (state, name) in [(IBV_QPS_INIT, "INIT"), (IBV_QPS_RTR, "RTR"), (IBV_QPS_RTS, "RTS")] {
            var (attributes, mask) = try IBVerbsCalls.initQPAttributes(id, state: state)
            try modify(&attributes, mask: mask, "to \(name) (rdma_init_qp_attr)")
        }
    }

    /// Checks that `id` runs on this queue pair's device and port.
    /// - Throws: `EINVAL`, reported as `call`, when it does not.
    func checkDevice(of id: UnsafeMutablePointer<rdma_cm_id>, call: VerbsCall) throws(VerbsError) {
        let device = domain.device
        guard let (name, port) = IBVerbsCalls.boundDevice(id), name == device.name, port == device.port.number else {
            let bound = IBVerbsCalls.boundDevice(id).map { "\($0.name) port \($0.port)" } ?? "no device"
            throw VerbsError(call, errno: EINVAL,
                             "the address is reached through \(bound); queue pair \(number) is on \(device.name) port \(device.port.number)")
        }
    }

    /// What `rdma_connect` or `rdma_accept` sends for this queue pair: its number,
    /// `parameters`' depths capped by the device (and by `peer`'s, when answering), and
    /// its retry counts. The private data goes in with the call.
    func connectionParameters(_ parameters: ConnectionParameters, answering peer: ConnectionParameters? = nil) -> rdma_conn_param {
        let limit = domain.device.maxReadsInFlight
        var result = rdma_conn_param()
        result.qp_num = number
        result.responder_resources = UInt8(clamping: min(parameters.responderResources, limit, peer?.initiatorDepth ?? .max))
        result.initiator_depth = UInt8(clamping: min(parameters.initiatorDepth, limit, peer?.responderResources ?? .max))
        result.retry_count = UInt8(parameters.retryCount)
        result.rnr_retry_count = UInt8(parameters.receiverNotReadyRetryCount)
        return result
    }
}
#endif
