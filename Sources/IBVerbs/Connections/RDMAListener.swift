#if RDMA
import CVerbs
import Glibc
import Locking
import Verbs

/// Listens for `rdma_cm` connections on an IPv4 or IPv6 address and port, and hands
/// out each peer's request as an ``RDMAConnectionRequest`` to accept with a queue
/// pair or reject.
///
/// Bound to `::` it listens on every IPv6 and IPv4 address of every RDMA device; bound
/// to one address, on the device that has it. Requests are taken without blocking
/// with ``takeRequest()``, waited for with `accept(timeout:)`, or awaited with
/// `accept(on:)`; the descriptor ``eventFileDescriptor`` is readable while one waits.
public final class RDMAListener: VerbsListener, @unchecked Sendable {
    /// The address the listener is bound to.
    public let host: String
    /// The port the listener is bound to.
    public let port: UInt16
    private let channel: ConnectionManagerChannel
    private let id: LockedValue<IBVerbsHandle<rdma_cm_id>?>

    /// Binds to `host` (an IPv4 or IPv6 address; `0.0.0.0` or `::` for every address)
    /// and `port` (0: a free port, then named by ``port``), and listens with room for
    /// `backlog` requests not yet taken. The corresponding C functions are
    /// `rdma_create_event_channel`, `rdma_create_id`, `rdma_bind_addr` and `rdma_listen`.
    /// - Throws: `EINVAL` for a host that is no IP address; `EADDRINUSE` when the port
    ///   is taken; `EADDRNOTAVAIL` or `ENODEV` when no RDMA device has the address.
    public init(host: String, port: UInt16 = 0, backlog: Int = 16) throws(VerbsError) {
        let address = try SocketAddress(host: host, port: port, call: .bindAddress)
        let channel = try ConnectionManagerChannel()
        let id = try IBVerbsCalls.createID(channel.channel)
        do throws(VerbsError) {
            try IBVerbsCalls.bindAddress(id, address)
            try IBVerbsCalls.listen(id, backlog: Int32(clamping: backlog))
        } catch {
            try? IBVerbsCalls.destroyID(id)
            throw error
        }
        self.host = host
        self.port = IBVerbsCalls.sourcePort(id)
        self.channel = channel
        self.id = LockedValue(IBVerbsHandle(id))
    }

    /// The listener's event-channel descriptor (non-blocking).
    public var eventFileDescriptor: Int32 { channel.descriptor }

    /// Takes the next connection request, if any. Other events of the listener (an
    /// address change, the device going away) are acknowledged and dropped; a listener
    /// whose device went away throws `ENODEV`. The corresponding C functions are
    /// `rdma_get_cm_event`, `rdma_ack_cm_event` and `rdma_migrate_id` (each request
    /// gets an event channel of its own).
    /// - Throws: `EBADF` once the listener is closed.
    public func takeRequest() throws(VerbsError) -> RDMAConnectionRequest? {
        try id.withLock { (listening) throws(VerbsError) -> RDMAConnectionRequest? in
            guard listening != nil else { throw VerbsError(.getConnectionEvent, errno: EBADF, "the listener was closed") }
            while let event = try channel.take() {
                switch event.type {
                case RDMA_CM_EVENT_CONNECT_REQUEST:
                    guard let id = event.id else { continue }
                    return try RDMAConnectionRequest(id: id, peerParameters: event.peer)
                case RDMA_CM_EVENT_DEVICE_REMOVAL:
                    throw VerbsError(.getConnectionEvent, errno: ENODEV, "the listener's device was removed")
                default:
                    continue
                }
            }
            return nil
        }
    }

    /// Stops listening; requests not yet taken are refused by the connection manager.
    /// A second call does nothing. The corresponding C function is `rdma_destroy_id`.
    public func close() throws(VerbsError) {
        try id.withLock { (listening) throws(VerbsError) in
            guard let live = listening else { return }
            listening = nil
            try IBVerbsCalls.destroyID(live.pointer)
        }
    }

    deinit { try? close() }
}

/// A peer's request to connect, received by an ``RDMAListener``: accept it with a
/// queue pair or reject it. A request released unanswered is rejected.
public final class RDMAConnectionRequest: VerbsConnectionRequest, @unchecked Sendable {
    /// What the peer sent: its private data (padded with zero bytes to 56, as librdmacm
    /// reports a request's over InfiniBand and RoCE) and its RDMA READ depths.
    public let peerParameters: ConnectionParameters
    /// The peer's address.
    public let peerHost: String
    private let channel: ConnectionManagerChannel
    /// The request's identifier until it is answered.
    private let id: LockedValue<IBVerbsHandle<rdma_cm_id>?>

    /// Takes over `id`, moving its events to a channel of its own.
    init(id: UnsafeMutablePointer<rdma_cm_id>, peerParameters: ConnectionParameters) throws(VerbsError) {
        let channel: ConnectionManagerChannel
        do throws(VerbsError) {
            channel = try ConnectionManagerChannel()
            try IBVerbsCalls.migrateID(id, to: channel.channel)
        } catch {
            try? IBVerbsCalls.reject(id, privateData: [])
            try? IBVerbsCalls.destroyID(id)
            throw error
        }
        self.channel = channel
        self.peerParameters = peerParameters
        self.peerHost = IBVerbsCalls.peerAddress(id)?.host ?? "?"
        self.id = LockedValue(IBVerbsHandle(id))
    }

    /// Accepts: moves `queuePair` (in the reset state, on the device the request
    /// arrived on) to RTS with the connection's attributes, replies with `parameters`
    /// (depths capped by the device and by what the peer offered), and waits until the
    /// peer confirms. The corresponding C functions are `rdma_init_qp_attr` with
    /// `ibv_modify_qp`, and `rdma_accept`.
    /// - Throws: `EINVAL` for parameters beyond their limits, a queue pair not in the
    ///   reset state or on another device, or a request already answered; `ETIMEDOUT`
    ///   when the peer does not confirm within `timeout`; `ECONNABORTED` when it gave
    ///   up. The queue pair is back in the reset state then.
    public func accept(
        _ queuePair: IBVerbsQueuePair, parameters: ConnectionParameters = ConnectionParameters(),
        timeout: Duration = .seconds(10)
    ) throws(VerbsError) -> RDMAConnection {
        try parameters.validate(for: .accept, privateDataLimit: ConnectionParameters.maxReplyPrivateData)
        guard queuePair.state == .reset else {
            throw VerbsError(.accept, errno: EINVAL, "queue pair \(queuePair.number) is \(queuePair.state), not RESET")
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        return try id.withLock { (request) throws(VerbsError) -> RDMAConnection in
            guard let live = request?.pointer else { throw VerbsError(.accept, errno: EINVAL, "the request was answered already") }
            try queuePair.checkDevice(of: live, call: .accept)
            do throws(VerbsError) {
                try queuePair.ready(through: live)
                try IBVerbsCalls.accept(live, queuePair.connectionParameters(parameters, answering: peerParameters),
                                        privateData: parameters.privateData)
                request = nil
                _ = try channel.expect(RDMA_CM_EVENT_ESTABLISHED, until: deadline, call: .accept)
            } catch {
                if request != nil { try? IBVerbsCalls.reject(live, privateData: []) }
                try? IBVerbsCalls.destroyID(live)
                request = nil
                try? queuePair.modify(to: .reset, remote: nil)
                if error.errno == ECONNREFUSED || error.errno == EHOSTUNREACH {
                    throw VerbsError(.accept, errno: ECONNABORTED, error.reason, connectionEvent: error.connectionEvent)
                }
                throw error
            }
            return RDMAConnection(id: live, channel: channel, queuePair: queuePair, peerParameters: peerParameters)
        }
    }

    /// Rejects the request with `privateData` (at most
    /// `ConnectionParameters/maxRejectPrivateData` bytes). The corresponding C
    /// functions are `rdma_reject` and `rdma_destroy_id`.
    /// - Throws: `EINVAL` for too much private data or a request already answered.
    public func reject(privateData: [UInt8] = []) throws(VerbsError) {
        try ConnectionParameters(privateData: privateData)
            .validate(for: .reject, privateDataLimit: ConnectionParameters.maxRejectPrivateData)
        try id.withLock { (request) throws(VerbsError) in
            guard let live = request?.pointer else { throw VerbsError(.reject, errno: EINVAL, "the request was answered already") }
            request = nil
            defer { try? IBVerbsCalls.destroyID(live) }
            try IBVerbsCalls.reject(live, privateData: privateData)
        }
    }

    deinit {
        id.withLock { request in
            guard let live = request?.pointer else { return }
            try? IBVerbsCalls.reject(live, privateData: [])
            try? IBVerbsCalls.destroyID(live)
            request = nil
        }
    }
}
#endif
