#if RDMA
import CVerbs
import Glibc
import Verbs

/// Two queue pairs of one machine connected through librdmacm (`rdma_cm`) over an IP
/// address: the second way to connect, next to GID addressing with
/// `QueuePair.connect(_:_:)`.
///
/// The queue pairs stay ``IBVerbsQueuePair``s made by this library's protection
/// domains: the connection manager runs in its "application-managed QP" mode. It
/// resolves the address and route and exchanges the connection messages (REQ, REP,
/// RTU), and each side's queue pair is moved RESET → INIT → RTR → RTS with the
/// attributes `rdma_init_qp_attr` gives (PSNs, path, MTU, read depths). Both sides
/// run in the calling thread on one event channel; every wait is bounded.
///
/// ``close()`` disconnects and destroys the connection identifiers; the queue pairs
/// are left to their owner (move them to the error state or close them).
public final class IBVerbsConnection: @unchecked Sendable {
    /// The IPv4 address the passive side listened on.
    public let address: String
    /// The port the passive side listened on.
    public private(set) var port: UInt16 = 0
    private var channel: UnsafeMutablePointer<rdma_event_channel>?
    private var identifiers: [UnsafeMutablePointer<rdma_cm_id>] = []
    /// The active and passive identifiers of the connection, while connected.
    private var connected: (requester: UnsafeMutablePointer<rdma_cm_id>, responder: UnsafeMutablePointer<rdma_cm_id>)?
    private let timeoutMilliseconds: Int32

    /// Connects `active` to `passive` (both in the RESET state) through the connection
    /// manager, `passive` listening on `address` (an IPv4 address of an RDMA-capable
    /// interface; not loopback) and `port` (0: any free port).
    ///
    /// The corresponding C functions are `rdma_create_id`, `rdma_bind_addr`,
    /// `rdma_listen`, `rdma_resolve_addr`, `rdma_resolve_route`, `rdma_connect`,
    /// `rdma_init_qp_attr` with `ibv_modify_qp`, `rdma_accept` and `rdma_establish`.
    /// - Throws: The failing call's error (named in the reason); `ETIMEDOUT` when an
    ///   event does not come within `timeoutMilliseconds`; `ECONNREFUSED` for an
    ///   unexpected event. Everything made so far is destroyed first.
    public init(_ active: IBVerbsQueuePair, to passive: IBVerbsQueuePair, address: String, port: UInt16 = 0,
                timeoutMilliseconds: Int32 = 10_000) throws(VerbsError) {
        self.address = address
        self.timeoutMilliseconds = timeoutMilliseconds
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
            throw VerbsError(.bindAddress, errno: EINVAL, "\(address) is no IPv4 address")
        }
        let channel = try IBVerbsCalls.createEventChannel()
        self.channel = channel
        do {
            let listener = try IBVerbsCalls.createID(channel)
            identifiers.append(listener)
            try IBVerbsCalls.bindAddress(listener, &socketAddress)
            try IBVerbsCalls.listen(listener, backlog: 1)
            self.port = IBVerbsCalls.sourcePort(listener)
            socketAddress.sin_port = self.port.bigEndian

            let requester = try IBVerbsCalls.createID(channel)
            identifiers.append(requester)
            try IBVerbsCalls.resolveAddress(requester, &socketAddress, timeoutMilliseconds: timeoutMilliseconds)
            _ = try expect(RDMA_CM_EVENT_ADDR_RESOLVED)
            try IBVerbsCalls.resolveRoute(requester, timeoutMilliseconds: timeoutMilliseconds)
            _ = try expect(RDMA_CM_EVENT_ROUTE_RESOLVED)

            let depth = UInt8(clamping: min(active.domain.device.maxReadsInFlight, passive.domain.device.maxReadsInFlight))
            var request = Self.parameters(queuePair: active, depth: depth)
            try IBVerbsCalls.connect(requester, &request)

            let responder = try expect(RDMA_CM_EVENT_CONNECT_REQUEST)
            identifiers.append(responder)
            try Self.ready(passive, through: responder)
            var reply = Self.parameters(queuePair: passive, depth: depth)
            try IBVerbsCalls.accept(responder, &reply)

            _ = try expect(RDMA_CM_EVENT_CONNECT_RESPONSE)
            try Self.ready(active, through: requester)
            try IBVerbsCalls.establish(requester)
            _ = try expect(RDMA_CM_EVENT_ESTABLISHED)
            connected = (requester, responder)
        } catch {
            release()
            throw error
        }
    }

    /// Disconnects (waiting, bounded, for both sides to see it) and destroys the
    /// connection identifiers and the event channel. A second call does nothing.
    /// The active side sends the disconnect request; the passive side, told of it,
    /// answers with its own `rdma_disconnect` (the reply the active side waits for).
    /// The corresponding C functions are `rdma_disconnect` and `rdma_destroy_id`.
    public func close() throws(VerbsError) {
        defer { release() }
        guard let (requester, responder) = connected else { return }
        connected = nil
        try IBVerbsCalls.disconnect(requester)
        for _ in 0..<2 {
            if try expect(RDMA_CM_EVENT_DISCONNECTED) == responder { try IBVerbsCalls.disconnect(responder) }
        }
    }

    deinit { try? close() }

    /// Destroys the identifiers, newest first, then the channel.
    private func release() {
        for id in identifiers.reversed() { try? IBVerbsCalls.destroyID(id) }
        identifiers.removeAll()
        if let channel { IBVerbsCalls.destroyEventChannel(channel) }
        channel = nil
    }

    /// Waits for the next event, which must be `type`; returns its identifier.
    private func expect(_ type: rdma_cm_event_type) throws(VerbsError) -> UnsafeMutablePointer<rdma_cm_id> {
        guard let channel else { preconditionFailure("the event channel is gone") }
        let event = try IBVerbsCalls.nextEvent(channel, timeoutMilliseconds: timeoutMilliseconds)
        let (got, status, id) = (event.pointee.event, event.pointee.status, event.pointee.id!)
        IBVerbsCalls.acknowledge(event)
        guard got == type else {
            throw VerbsError(.modifyQueuePair, errno: ECONNREFUSED,
                             "rdma_get_cm_event: expected \(IBVerbsCalls.eventName(type)), got \(IBVerbsCalls.eventName(got)) (status \(status))")
        }
        return id
    }

    /// What `rdma_connect` and `rdma_accept` send: the queue pair's number and its RDMA READ depths.
    private static func parameters(queuePair: IBVerbsQueuePair, depth: UInt8) -> rdma_conn_param {
        var parameters = rdma_conn_param()
        parameters.qp_num = queuePair.number
        parameters.responder_resources = depth
        parameters.initiator_depth = depth
        parameters.retry_count = IBVerbsQueuePair.retries
        parameters.rnr_retry_count = IBVerbsQueuePair.retries
        return parameters
    }

    /// Moves `queuePair` to INIT, RTR and RTS with the attributes the connection manager gives for `id`.
    private static func ready(_ queuePair: IBVerbsQueuePair, through id: UnsafeMutablePointer<rdma_cm_id>) throws(VerbsError) {
        for (state, name) in [(IBV_QPS_INIT, "INIT"), (IBV_QPS_RTR, "RTR"), (IBV_QPS_RTS, "RTS")] {
            var (attributes, mask) = try IBVerbsCalls.initQPAttributes(id, state: state)
            try queuePair.modify(&attributes, mask: mask, "to \(name) (rdma_init_qp_attr)")
        }
    }
}
#endif
