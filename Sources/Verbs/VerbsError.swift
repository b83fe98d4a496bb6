#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The verbs call that failed, named after its libibverbs function.
public enum VerbsCall: String, Sendable, CustomStringConvertible {
    /// Opening a device. The C function is `ibv_open_device`.
    case openDevice = "ibv_open_device"
    /// Allocating a protection domain. The C function is `ibv_alloc_pd`.
    case allocateProtectionDomain = "ibv_alloc_pd"
    /// Releasing a protection domain. The C function is `ibv_dealloc_pd`.
    case deallocateProtectionDomain = "ibv_dealloc_pd"
    /// Registering a memory region. The C function is `ibv_reg_mr`.
    case registerMemory = "ibv_reg_mr"
    /// Deregistering a memory region. The C function is `ibv_dereg_mr`.
    case deregisterMemory = "ibv_dereg_mr"
    /// Creating a completion queue. The C function is `ibv_create_cq`.
    case createCompletionQueue = "ibv_create_cq"
    /// Destroying a completion queue. The C function is `ibv_destroy_cq`.
    case destroyCompletionQueue = "ibv_destroy_cq"
    /// Creating a queue pair. The C function is `ibv_create_qp`.
    case createQueuePair = "ibv_create_qp"
    /// Moving a queue pair to another state. The C function is `ibv_modify_qp`.
    case modifyQueuePair = "ibv_modify_qp"
    /// Destroying a queue pair. The C function is `ibv_destroy_qp`.
    case destroyQueuePair = "ibv_destroy_qp"
    /// Posting a send-queue work request. The C function is `ibv_post_send`.
    case postSend = "ibv_post_send"
    /// Posting a receive-queue work request. The C function is `ibv_post_recv`.
    case postReceive = "ibv_post_recv"
    /// Polling a completion queue. The C function is `ibv_poll_cq`.
    case pollCompletionQueue = "ibv_poll_cq"
    /// Creating a completion channel. The C function is `ibv_create_comp_channel`.
    case createCompletionChannel = "ibv_create_comp_channel"
    /// Destroying a completion channel. The C function is `ibv_destroy_comp_channel`.
    case destroyCompletionChannel = "ibv_destroy_comp_channel"
    /// Arming a completion queue. The C function is `ibv_req_notify_cq`.
    case requestNotification = "ibv_req_notify_cq"
    /// Taking a completion event from a channel. The C function is `ibv_get_cq_event`.
    case getCompletionEvent = "ibv_get_cq_event"
    /// Taking an asynchronous device event. The C function is `ibv_get_async_event`.
    case getAsyncEvent = "ibv_get_async_event"
    /// Listing the RDMA devices of the machine. The C function is `ibv_get_device_list`.
    case getDeviceList = "ibv_get_device_list"
    /// Querying a device's limits. The C function is `ibv_query_device`.
    case queryDevice = "ibv_query_device"
    /// Querying the state of a device port. The C function is `ibv_query_port`.
    case queryPort = "ibv_query_port"
    /// Reading a port's GID table. The C function is `ibv_query_gid_table`.
    case queryGIDTable = "ibv_query_gid_table"
    /// Reading one entry of a port's GID table. The C function is `ibv_query_gid`.
    case queryGID = "ibv_query_gid"
    /// Querying a queue pair's state. The C function is `ibv_query_qp`.
    case queryQueuePair = "ibv_query_qp"
    /// Asking libibverbs to protect registered memory across `fork()`. The C function is `ibv_fork_init`.
    case forkInit = "ibv_fork_init"
    /// Creating the channel that carries connection-manager events. The C function is `rdma_create_event_channel`.
    case createEventChannel = "rdma_create_event_channel"
    /// Creating a connection-manager identifier. The C function is `rdma_create_id`.
    case createConnectionID = "rdma_create_id"
    /// Destroying a connection-manager identifier. The C function is `rdma_destroy_id`.
    case destroyConnectionID = "rdma_destroy_id"
    /// Binding a connection-manager identifier to a local address. The C function is `rdma_bind_addr`.
    case bindAddress = "rdma_bind_addr"
    /// Resolving the server's IP address to a local RDMA device. The C function is `rdma_resolve_addr`.
    case resolveAddress = "rdma_resolve_addr"
    /// Resolving the route to the server. The C function is `rdma_resolve_route`.
    case resolveRoute = "rdma_resolve_route"
    /// Listening for connection requests. The C function is `rdma_listen`.
    case listen = "rdma_listen"
    /// Asking a listening server for a connection. The C function is `rdma_connect`.
    case connect = "rdma_connect"
    /// Accepting a connection request. The C function is `rdma_accept`.
    case accept = "rdma_accept"
    /// Refusing a connection request. The C function is `rdma_reject`.
    case reject = "rdma_reject"
    /// Moving a connection's events to a channel of its own. The C function is `rdma_migrate_id`.
    case migrateConnectionID = "rdma_migrate_id"
    /// Completing a connection whose queue pair is ready. The C function is `rdma_establish`.
    case establish = "rdma_establish"
    /// Ending a connection. The C function is `rdma_disconnect`.
    case disconnect = "rdma_disconnect"
    /// Waiting for the next connection-manager event. The C function is `rdma_get_cm_event`.
    case getConnectionEvent = "rdma_get_cm_event"
    /// Getting the attributes for a queue pair's next state from the connection manager. The C function is `rdma_init_qp_attr`.
    case initQueuePairAttributes = "rdma_init_qp_attr"

    /// The C function's name, such as `ibv_post_send`.
    public var description: String { rawValue }
}

/// A verbs call that was refused, with the `errno` the C function reports and the call
/// that failed. SoftVerbs uses the codes libibverbs uses (`EINVAL` for a request the
/// queue pair cannot take, `ENOMEM` for a full queue or exhausted resources, `EBUSY`
/// for a resource still in use).
public struct VerbsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The function that failed.
    public var call: VerbsCall
    /// The `errno` value.
    public var errno: Int32
    /// What was wrong, for people.
    public var reason: String
    /// For a chain of requests posted in one call: the position of the request that
    /// was refused (libibverbs' `bad_wr`). The requests before it were posted, it and
    /// those after it were not.
    public var failedRequest: Int?
    /// For a connection that could not be made: the connection manager's event that
    /// ended the attempt, such as ``ConnectionEvent/rejected(privateData:)`` with the
    /// peer's private data.
    public var connectionEvent: ConnectionEvent?

    /// An error from `call` with `errno`, explained by `reason`; for a chain,
    /// `failedRequest` is the position of the refused request.
    public init(_ call: VerbsCall, errno: Int32, _ reason: String, failedRequest: Int? = nil,
                connectionEvent: ConnectionEvent? = nil) {
        self.call = call
        self.errno = errno
        self.reason = reason
        self.failedRequest = failedRequest
        self.connectionEvent = connectionEvent
    }

    /// Two errors are the same when the call and errno match; the reason (and the
    /// failed request's position) is commentary.
    public static func == (lhs: VerbsError, rhs: VerbsError) -> Bool {
        lhs.call == rhs.call && lhs.errno == rhs.errno
    }

    /// Hashes the call and the `errno`, the parts equality compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(call)
        hasher.combine(errno)
    }

    /// The call, the `errno` and the reason, for logs.
    public var description: String {
        "\(call) failed (errno \(errno)): \(reason)\(failedRequest.map { " (request \($0) of the chain)" } ?? "")"
    }
}
