#if RDMA
import CVerbs
import Glibc
import Verbs

/// The librdmacm half of the seam: connection management, one function per C call.
extension IBVerbsCalls {
    /// `rdma_create_event_channel`.
    static func createEventChannel() throws(VerbsError) -> UnsafeMutablePointer<rdma_event_channel> {
        errno = 0
        guard let channel = mocked("rdma_create_event_channel", rdma_event_channel.self) ?? rdma_create_event_channel() else {
            throw failure(.createEventChannel, code: nullCode)
        }
        return channel
    }

    /// `rdma_destroy_event_channel`.
    static func destroyEventChannel(_ channel: UnsafeMutablePointer<rdma_event_channel>) {
        if mocked("rdma_destroy_event_channel") == nil { rdma_destroy_event_channel(channel) }
    }

    /// `rdma_create_id` in the TCP port space (reliable connected).
    static func createID(_ channel: UnsafeMutablePointer<rdma_event_channel>) throws(VerbsError) -> UnsafeMutablePointer<rdma_cm_id> {
        var id: UnsafeMutablePointer<rdma_cm_id>?
        errno = 0
        guard (mocked("rdma_create_id", into: &id) ?? rdma_create_id(channel, &id, nil, RDMA_PS_TCP)) == 0, let id else {
            throw failure(.createConnectionID, code: nullCode)
        }
        return id
    }

    /// `rdma_destroy_id`.
    static func destroyID(_ id: UnsafeMutablePointer<rdma_cm_id>) throws(VerbsError) {
        errno = 0
        guard (mocked("rdma_destroy_id") ?? rdma_destroy_id(id)) == 0 else { throw failure(.destroyConnectionID, code: nullCode) }
    }

    /// Runs a librdmacm call that returns 0 or -1 with `errno`.
    static func cm(_ call: VerbsCall, _ detail: String = "", _ body: () -> Int32) throws(VerbsError) {
        errno = 0
        guard (mocked(call.rawValue) ?? body()) == 0 else { throw failure(call, code: nullCode, detail) }
    }

    /// `rdma_bind_addr`.
    static func bindAddress(_ id: UnsafeMutablePointer<rdma_cm_id>, _ address: SocketAddress) throws(VerbsError) {
        try cm(.bindAddress, "\(address)") { address.withSocketAddress { rdma_bind_addr(id, $0) } }
    }

    /// `rdma_listen`.
    static func listen(_ id: UnsafeMutablePointer<rdma_cm_id>, backlog: Int32) throws(VerbsError) {
        try cm(.listen) { rdma_listen(id, backlog) }
    }

    /// `rdma_resolve_addr` towards `destination`.
    static func resolveAddress(_ id: UnsafeMutablePointer<rdma_cm_id>, _ destination: SocketAddress,
                               timeoutMilliseconds: Int32) throws(VerbsError) {
        try cm(.resolveAddress, "\(destination)") {
            destination.withSocketAddress { rdma_resolve_addr(id, nil, $0, timeoutMilliseconds) }
        }
    }

    /// `rdma_resolve_route`.
    static func resolveRoute(_ id: UnsafeMutablePointer<rdma_cm_id>, timeoutMilliseconds: Int32) throws(VerbsError) {
        try cm(.resolveRoute) { rdma_resolve_route(id, timeoutMilliseconds) }
    }

    /// `rdma_connect`, with `privateData` in `parameters`.
    static func connect(_ id: UnsafeMutablePointer<rdma_cm_id>, _ parameters: rdma_conn_param,
                        privateData: [UInt8]) throws(VerbsError) {
        try cm(.connect) { with(parameters, privateData: privateData) { rdma_connect(id, $0) } }
    }

    /// `rdma_accept`, with `privateData` in `parameters`.
    static func accept(_ id: UnsafeMutablePointer<rdma_cm_id>, _ parameters: rdma_conn_param,
                       privateData: [UInt8]) throws(VerbsError) {
        try cm(.accept) { with(parameters, privateData: privateData) { rdma_accept(id, $0) } }
    }

    /// Runs `call` with a copy of `parameters` that points at `privateData`.
    private static func with(_ parameters: rdma_conn_param, privateData: [UInt8],
                             _ call: (UnsafeMutablePointer<rdma_conn_param>) -> Int32) -> Int32 {
        privateData.withUnsafeBytes { data in
            var parameters = parameters
            parameters.private_data = data.baseAddress
            parameters.private_data_len = UInt8(clamping: data.count)
            return call(&parameters)
        }
    }

    /// `rdma_reject` with `privateData`.
    static func reject(_ id: UnsafeMutablePointer<rdma_cm_id>, privateData: [UInt8]) throws(VerbsError) {
        try cm(.reject) { privateData.withUnsafeBytes { rdma_reject(id, $0.baseAddress, UInt8(clamping: $0.count)) } }
    }

    /// `rdma_migrate_id`: the identifier's events go to `channel` from now on.
    static func migrateID(_ id: UnsafeMutablePointer<rdma_cm_id>, to channel: UnsafeMutablePointer<rdma_event_channel>) throws(VerbsError) {
        try cm(.migrateConnectionID) { rdma_migrate_id(id, channel) }
    }

    /// `rdma_establish`.
    static func establish(_ id: UnsafeMutablePointer<rdma_cm_id>) throws(VerbsError) {
        try cm(.establish) { rdma_establish(id) }
    }

    /// `rdma_disconnect`.
    static func disconnect(_ id: UnsafeMutablePointer<rdma_cm_id>) throws(VerbsError) {
        try cm(.disconnect) { rdma_disconnect(id) }
    }

    /// `rdma_init_qp_attr` for `state`.
    static func initQPAttributes(_ id: UnsafeMutablePointer<rdma_cm_id>, state: ibv_qp_state) throws(VerbsError) -> (ibv_qp_attr, Int32) {
        var attributes = ibv_qp_attr()
        attributes.qp_state = state
        var mask: Int32 = 0
        try cm(.initQueuePairAttributes, "state \(state.rawValue)") { rdma_init_qp_attr(id, &attributes, &mask) }
        return (attributes, mask)
    }

    /// `rdma_get_cm_event` on a channel whose descriptor is non-blocking: the next
    /// event, or `nil` when none waits (`EAGAIN`).
    static func takeEvent(_ channel: UnsafeMutablePointer<rdma_event_channel>) throws(VerbsError) -> UnsafeMutablePointer<rdma_cm_event>? {
        var event: UnsafeMutablePointer<rdma_cm_event>?
        errno = 0
        guard (mocked("rdma_get_cm_event", into: &event) ?? rdma_get_cm_event(channel, &event)) == 0, let event else {
            if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
            throw failure(.getConnectionEvent, code: nullCode)
        }
        return event
    }

    /// The descriptor of `channel` (its `fd` member).
    static func eventChannelDescriptor(_ channel: UnsafeMutablePointer<rdma_event_channel>) -> Int32 {
        // A mocked channel has no descriptor (its zeroed `fd` would name standard input).
        mock == nil ? cverbs_event_channel_fd(channel) : -1
    }

    /// `rdma_get_peer_addr`, as text.
    static func peerAddress(_ id: UnsafeMutablePointer<rdma_cm_id>) -> SocketAddress? {
        mocked("rdma_get_peer_addr") == nil ? SocketAddress(rdma_get_peer_addr(id)) : nil
    }

    /// The device and port the identifier is bound to (`verbs` and `port_num`), once
    /// its address is resolved or a request arrived on it.
    static func boundDevice(_ id: UnsafeMutablePointer<rdma_cm_id>) -> (name: String, port: UInt8)? {
        guard let context = id.pointee.verbs, let device = context.pointee.device else { return nil }
        return (deviceName(device), id.pointee.port_num)
    }

    /// `rdma_get_src_port`, in host order.
    static func sourcePort(_ id: UnsafeMutablePointer<rdma_cm_id>) -> UInt16 {
        mocked("rdma_get_src_port") == nil ? UInt16(bigEndian: rdma_get_src_port(id)) : 0
    }

    /// `rdma_event_str`.
    static func eventName(_ type: rdma_cm_event_type) -> String {
        let name = mocked("rdma_event_str") == nil ? rdma_event_str(type) : nil
        return name.map { String(cString: $0) } ?? "event \(type.rawValue)"
    }

    /// `rdma_ack_cm_event`.
    static func acknowledge(_ event: UnsafeMutablePointer<rdma_cm_event>) {
        if mocked("rdma_ack_cm_event") == nil { rdma_ack_cm_event(event) }
    }
}
#endif
