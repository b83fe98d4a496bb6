#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The verbs call that failed, named after its libibverbs function.
public enum VerbsCall: String, Sendable, CustomStringConvertible {
    case openDevice = "ibv_open_device"
    case allocateProtectionDomain = "ibv_alloc_pd"
    case deallocateProtectionDomain = "ibv_dealloc_pd"
    case registerMemory = "ibv_reg_mr"
    case deregisterMemory = "ibv_dereg_mr"
    case createCompletionQueue = "ibv_create_cq"
    case destroyCompletionQueue = "ibv_destroy_cq"
    case createQueuePair = "ibv_create_qp"
    case modifyQueuePair = "ibv_modify_qp"
    case destroyQueuePair = "ibv_destroy_qp"
    case postSend = "ibv_post_send"
    case postReceive = "ibv_post_recv"
    case pollCompletionQueue = "ibv_poll_cq"
    case getDeviceList = "ibv_get_device_list"
    case queryDevice = "ibv_query_device"
    case queryPort = "ibv_query_port"
    case queryGIDTable = "ibv_query_gid_table"
    case queryGID = "ibv_query_gid"
    case queryQueuePair = "ibv_query_qp"
    case forkInit = "ibv_fork_init"
    case createEventChannel = "rdma_create_event_channel"
    case createConnectionID = "rdma_create_id"
    case destroyConnectionID = "rdma_destroy_id"
    case bindAddress = "rdma_bind_addr"
    case resolveAddress = "rdma_resolve_addr"
    case resolveRoute = "rdma_resolve_route"
    case listen = "rdma_listen"
    case connect = "rdma_connect"
    case accept = "rdma_accept"
    case establish = "rdma_establish"
    case disconnect = "rdma_disconnect"
    case getConnectionEvent = "rdma_get_cm_event"
    case initQueuePairAttributes = "rdma_init_qp_attr"

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

    /// An error from `call` with `errno`, explained by `reason`.
    public init(_ call: VerbsCall, errno: Int32, _ reason: String) {
        self.call = call
        self.errno = errno
        self.reason = reason
    }

    /// Two errors are the same when the call and errno match; the reason is commentary.
    public static func == (lhs: VerbsError, rhs: VerbsError) -> Bool {
        lhs.call == rhs.call && lhs.errno == rhs.errno
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(call)
        hasher.combine(errno)
    }

    public var description: String { "\(call) failed (errno \(errno)): \(reason)" }
}
