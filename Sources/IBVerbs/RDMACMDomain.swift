#if RDMA
import CVerbs
import Glibc
import Verbs


/// The verbs objects of one client connection that the connection manager (librdmacm)
/// sets up: how `smbdirect-send` reaches a real SMB Direct server such as ksmbd.
///
/// A server like ksmbd accepts SMB Direct through `rdma_cm`, which numbers the
/// packets of each direction from a random starting PSN it exchanges in its REQ and
/// REP messages. So the queue pair must be moved to RTR and RTS with the attributes
/// the connection manager holds, which librdmacm does itself for a queue pair made
/// with `rdma_create_qp` on the connection's identifier. This domain is the
/// `ProtectionDomain` built around that identifier: its protection domain, completion
/// queues, memory regions and its single queue pair all live on the device the
/// connection manager resolved the server's address to, so an
/// `SMBDirectConnection` runs on it unchanged.
///
/// Use:
/// 1. ``init(host:port:timeoutMilliseconds:)`` resolves the address and route and
///    allocates the protection domain.
/// 2. `SMBDirectConnection(domain:role:configuration:)` creates the completion queue
///    and the queue pair in it (only one queue pair per domain).
/// 3. ``connect(responderResources:initiatorDepth:)`` connects the queue pair to the
///    server; then `start()` and `waitUntilConnected()` negotiate SMB Direct.
/// 4. Closing the connection moves the queue pair to the error state, which here is
///    `rdma_disconnect`; ``close()`` then releases the domain and the identifier.
///
/// The domain is driven by one thread at a time (as `SMBDirectConnection` is).
public final class RDMACMDomain: ProtectionDomain, @unchecked Sendable {
    /// The server's IPv4 address.
    public let host: String
    /// The server's port (ksmbd listens on 445 on RoCE and InfiniBand, 5445 on iWARP).
    public let port: UInt16
    /// What the resolved device supports.
    public let attributes: DeviceAttributes
    /// The most RDMA READs the device allows in flight per queue pair, either way.
    public let maxReadsInFlight: Int
    /// The resolved device's name (`rxe0` on soft-RoCE).
    public let deviceName: String
    let timeoutMilliseconds: Int32
    var channel: UnsafeMutablePointer<rdma_event_channel>?
    var identifier: UnsafeMutablePointer<rdma_cm_id>?
    var pd: UnsafeMutablePointer<ibv_pd>?
    /// The queue pair, once made.
    weak var queuePair: RDMACMQueuePair?
    /// Set once `rdma_connect` has succeeded.
    public private(set) var isConnected = false

    /// Resolves `host` (an IPv4 address) and the route to it through the connection
    /// manager, in the `RDMA_PS_TCP` port space, and allocates a protection domain on
    /// the device the route leaves from.
    ///
    /// The corresponding C functions are `rdma_create_event_channel`, `rdma_create_id`,
    /// `rdma_resolve_addr`, `rdma_resolve_route`, `ibv_query_device` and `ibv_alloc_pd`.
    /// - Throws: `EINVAL` for a host that is no IPv4 address; `ETIMEDOUT` when an
    ///   event does not come within `timeoutMilliseconds`; the failing call's error
    ///   otherwise (named in the reason). Nothing stays allocated.
    public init(host: String, port: UInt16, timeoutMilliseconds: Int32 = 10_000) throws(VerbsError) {
        self.host = host
        self.port = port
        self.timeoutMilliseconds = timeoutMilliseconds
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw Self.error(EINVAL, "rdma_resolve_addr: \(host) is no IPv4 address")
        }
        guard let channel = rdma_create_event_channel() else { throw Self.error(errno, "rdma_create_event_channel") }
        var made: UnsafeMutablePointer<rdma_cm_id>?
        guard rdma_create_id(channel, &made, nil, RDMA_PS_TCP) == 0, let identifier = made else {
            let code = errno
            rdma_destroy_event_channel(channel)
            throw Self.error(code, "rdma_create_id")
        }
        func undo() {
            rdma_destroy_id(identifier)
            rdma_destroy_event_channel(channel)
        }
        do throws(VerbsError) {
            let status = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { rdma_resolve_addr(identifier, nil, $0, timeoutMilliseconds) }
            }
            guard status == 0 else { throw Self.error(errno, "rdma_resolve_addr \(host):\(port)") }
            try Self.expect(RDMA_CM_EVENT_ADDR_RESOLVED, on: channel, timeoutMilliseconds: timeoutMilliseconds)
            guard rdma_resolve_route(identifier, timeoutMilliseconds) == 0 else { throw Self.error(errno, "rdma_resolve_route") }
            try Self.expect(RDMA_CM_EVENT_ROUTE_RESOLVED, on: channel, timeoutMilliseconds: timeoutMilliseconds)
            guard let context = identifier.pointee.verbs else { throw Self.error(ENODEV, "rdma_resolve_route: no device") }
            var device = ibv_device_attr()
            let queried = ibv_query_device(context, &device)
            guard queried == 0 else { throw Self.error(queried, "ibv_query_device") }
            guard let pd = ibv_alloc_pd(context) else { throw Self.error(errno, "ibv_alloc_pd") }
            self.pd = pd
            attributes = DeviceAttributes(
                maxSGEs: Int(device.max_sge), maxMemoryRegionSize: Int(clamping: device.max_mr_size),
                maxMemoryRegions: Int(device.max_mr), maxQueuePairWorkRequests: Int(device.max_qp_wr),
                maxCompletionQueueEntries: Int(device.max_cqe), maxMessageSize: 1 << 31, maxInlineData: 0)
            maxReadsInFlight = max(1, Int(min(device.max_qp_rd_atom, device.max_qp_init_rd_atom)))
            deviceName = context.pointee.device.map { String(cString: ibv_get_device_name($0)) } ?? "?"
        } catch {
            undo()
            throw error
        }
        self.channel = channel
        self.identifier = identifier
    }

    /// Connects the domain's queue pair to the server (`rdma_connect`), offering
    /// `responderResources` RDMA READs in flight from the server (it pulls the data of
    /// RDMA-channel writes that way) and `initiatorDepth` of our own, both capped by
    /// the device. librdmacm moves the queue pair through INIT, RTR and RTS with the
    /// connection's PSNs, path and MTU.
    ///
    /// - Throws: `ECONNREFUSED` when the server rejects the connection or nothing
    ///   listens on the port; `ETIMEDOUT` when no answer comes in time.
    public func connect(responderResources: Int = 16, initiatorDepth: Int = 16) throws(VerbsError) {
        guard let identifier, let channel else { throw Self.error(ENOTCONN, "rdma_connect: the domain was closed") }
        guard let queuePair, identifier.pointee.qp != nil else {
            throw Self.error(EINVAL, "rdma_connect: create the queue pair (the SMBDirectConnection) first")
        }
        var parameters = rdma_conn_param()
        parameters.qp_num = queuePair.number
        parameters.responder_resources = UInt8(clamping: min(responderResources, maxReadsInFlight))
        parameters.initiator_depth = UInt8(clamping: min(initiatorDepth, maxReadsInFlight))
        parameters.retry_count = 7
        parameters.rnr_retry_count = 7
        guard rdma_connect(identifier, &parameters) == 0 else { throw Self.error(errno, "rdma_connect \(host):\(port)") }
        try Self.expect(RDMA_CM_EVENT_ESTABLISHED, on: channel, timeoutMilliseconds: timeoutMilliseconds)
        isConnected = true
    }

    /// Sends the disconnect request (once); librdmacm moves the queue pair to the
    /// error state, which flushes everything posted on it.
    func disconnect() {
        guard isConnected, let identifier else { return }
        isConnected = false
        _ = rdma_disconnect(identifier)
    }

    /// Registers `length` bytes at `address` in the connection's protection domain, naming
    /// them to peers by the same address (the I/O virtual address equals the virtual
    /// address). The corresponding C function is `ibv_reg_mr_iova2`, the path the
    /// `ibv_reg_mr` macro takes.
    /// - Throws: `EINVAL` for an empty or wrapping range or a closed domain; what
    ///   `ibv_reg_mr` reports.
    public func registerMemory(address: UInt, length: Int, access: AccessFlags) throws(VerbsError) -> RDMACMMemoryRegion {
        guard let pd else { throw VerbsError(.registerMemory, errno: EINVAL, "the protection domain was closed") }
        guard length > 0, !address.addingReportingOverflow(UInt(length)).overflow else {
            throw VerbsError(.registerMemory, errno: EINVAL, "\(length) bytes at 0x\(String(address, radix: 16)) is no valid range")
        }
        errno = 0
        guard let mr = cverbs_reg_mr_iova2(pd, UnsafeMutableRawPointer(bitPattern: address), length, UInt64(address),
                                           access.rawValue)
        else {
            throw VerbsError(.registerMemory, errno: errno == 0 ? ENOMEM : errno, "ibv_reg_mr of \(length) bytes (\(access))")
        }
        return RDMACMMemoryRegion(domain: self, mr: mr, address: address, length: length, access: access)
    }

    /// Creates a completion channel on the device the connection manager resolved. The
    /// corresponding C function is `ibv_create_comp_channel`.
    /// - Throws: `EINVAL` for a closed domain; what `ibv_create_comp_channel` reports.
    public func createCompletionChannel() throws(VerbsError) -> IBVerbsCompletionChannel {
        guard let context = identifier?.pointee.verbs else {
            throw VerbsError(.createCompletionChannel, errno: EINVAL, "the domain was closed")
        }
        return try IBVerbsCompletionChannel(context: context, owner: self)
    }

    /// Creates a completion queue of at least `capacity` entries on the device the
    /// connection manager resolved, raising its events on `channel` (none when `nil`).
    /// The corresponding C function is `ibv_create_cq`.
    /// - Throws: `EINVAL` for a closed domain or a capacity outside 1 through the device's
    ///   `maxCompletionQueueEntries`; what `ibv_create_cq` reports.
    public func createCompletionQueue(capacity: Int, channel: IBVerbsCompletionChannel?) throws(VerbsError) -> RDMACMCompletionQueue {
        guard let context = identifier?.pointee.verbs else {
            throw VerbsError(.createCompletionQueue, errno: EINVAL, "the domain was closed")
        }
        guard (1...attributes.maxCompletionQueueEntries).contains(capacity) else {
            throw VerbsError(.createCompletionQueue, errno: EINVAL,
                             "capacity \(capacity) is outside 1...\(attributes.maxCompletionQueueEntries)")
        }
        return try RDMACMCompletionQueue(domain: self, context: context, capacity: capacity, channel: channel)
    }

    /// Creates the connection's queue pair with `rdma_create_qp`: one per domain.
    public func createQueuePair(
        sendCompletions: RDMACMCompletionQueue, receiveCompletions: RDMACMCompletionQueue,
        capabilities: QueuePairCapabilities
    ) throws(VerbsError) -> RDMACMQueuePair {
        guard let identifier, let pd, let send = sendCompletions.cq, let receive = receiveCompletions.cq else {
            throw VerbsError(.createQueuePair, errno: EINVAL, "the domain or a completion queue was closed")
        }
        guard identifier.pointee.qp == nil else {
            throw VerbsError(.createQueuePair, errno: EBUSY, "a connection manager identifier has one queue pair")
        }
        var initial = ibv_qp_init_attr()
        initial.qp_type = IBV_QPT_RC
        initial.sq_sig_all = capabilities.signalsAll ? 1 : 0
        initial.send_cq = send
        initial.recv_cq = receive
        initial.cap.max_send_wr = UInt32(clamping: capabilities.maxSendWorkRequests)
        initial.cap.max_recv_wr = UInt32(clamping: capabilities.maxReceiveWorkRequests)
        initial.cap.max_send_sge = UInt32(clamping: capabilities.maxSendSGEs)
        initial.cap.max_recv_sge = UInt32(clamping: capabilities.maxReceiveSGEs)
        initial.cap.max_inline_data = UInt32(clamping: capabilities.maxInlineData)
        guard rdma_create_qp(identifier, pd, &initial) == 0, let qp = identifier.pointee.qp else {
            throw VerbsError(.createQueuePair, errno: errno, "rdma_create_qp")
        }
        let granted = QueuePairCapabilities(
            maxSendWorkRequests: Int(initial.cap.max_send_wr), maxReceiveWorkRequests: Int(initial.cap.max_recv_wr),
            maxSendSGEs: Int(initial.cap.max_send_sge), maxReceiveSGEs: Int(initial.cap.max_recv_sge),
            maxInlineData: Int(initial.cap.max_inline_data), signalsAll: capabilities.signalsAll)
        let pair = RDMACMQueuePair(domain: self, qp: qp, capabilities: granted,
                                   completionQueues: (sendCompletions, receiveCompletions))
        queuePair = pair
        return pair
    }

    /// Disconnects if still connected, then releases the protection domain, the
    /// connection identifier and the event channel. A second call does nothing.
    /// - Throws: `EBUSY` while regions of the domain remain registered (the domain
    ///   stays usable then).
    public func close() throws(VerbsError) {
        disconnect()
        if let qp = queuePair { try? qp.close() }
        if let pd {
            let status = ibv_dealloc_pd(pd)
            guard status == 0 else { throw VerbsError(.deallocateProtectionDomain, errno: status, "ibv_dealloc_pd") }
            self.pd = nil
        }
        if let identifier { rdma_destroy_id(identifier) }
        identifier = nil
        if let channel { rdma_destroy_event_channel(channel) }
        channel = nil
    }

    deinit { try? close() }

    // MARK: Events

    /// Waits (bounded) for the next event on `channel`, which must be `type`.
    static func expect(_ type: rdma_cm_event_type, on channel: UnsafeMutablePointer<rdma_event_channel>,
                       timeoutMilliseconds: Int32) throws(VerbsError) {
        var descriptor = pollfd(fd: cverbs_event_channel_fd(channel), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, timeoutMilliseconds)
        guard ready > 0 else {
            throw error(ready == 0 ? ETIMEDOUT : errno, "rdma_get_cm_event: no \(name(type)) within \(timeoutMilliseconds) ms")
        }
        var event: UnsafeMutablePointer<rdma_cm_event>?
        guard rdma_get_cm_event(channel, &event) == 0, let event else { throw error(errno, "rdma_get_cm_event") }
        let (got, status) = (event.pointee.event, event.pointee.status)
        rdma_ack_cm_event(event)
        guard got == type else {
            let code: Int32 = got == RDMA_CM_EVENT_REJECTED || got == RDMA_CM_EVENT_UNREACHABLE ? ECONNREFUSED
                : got == RDMA_CM_EVENT_ADDR_ERROR || got == RDMA_CM_EVENT_ROUTE_ERROR ? EHOSTUNREACH : ECONNABORTED
            throw error(code, "rdma_get_cm_event: expected \(name(type)), got \(name(got)) (status \(status))")
        }
    }

    static func name(_ type: rdma_cm_event_type) -> String { String(cString: rdma_event_str(type)) }

    /// A connection manager failure, reported as a failed `ibv_modify_qp` (the
    /// connection manager's job is the queue pair's transitions), the function named.
    static func error(_ code: Int32, _ reason: String) -> VerbsError {
        VerbsError(.modifyQueuePair, errno: code, "\(reason): \(String(cString: strerror(code)))")
    }
}
#endif
