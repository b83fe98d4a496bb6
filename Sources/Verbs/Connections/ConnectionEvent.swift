/// An event of one connection, as the connection manager reports it
/// (`enum rdma_cm_event_type`), as a typed value.
public enum ConnectionEvent: Hashable, Sendable, CustomStringConvertible {
    /// `RDMA_CM_EVENT_ESTABLISHED`: both sides may post.
    case established
    /// `RDMA_CM_EVENT_DISCONNECTED`: the peer (or this side) disconnected; the queue
    /// pair is in the error state and flushes what is outstanding.
    case disconnected
    /// `RDMA_CM_EVENT_REJECTED`: the peer refused the connection, with the private
    /// data of its rejection (empty when nothing listened on the port).
    case rejected(privateData: [UInt8])
    /// `RDMA_CM_EVENT_UNREACHABLE`: the peer did not answer.
    case unreachable
    /// `RDMA_CM_EVENT_CONNECT_ERROR`: the connection failed while it was being made.
    case connectionError
    /// `RDMA_CM_EVENT_DEVICE_REMOVAL`: the device the connection runs on is going
    /// away; close the connection and everything of the device.
    case deviceRemoved
    /// `RDMA_CM_EVENT_ADDR_CHANGE`: the address the connection uses moved to another
    /// device or port; the connection may fail.
    case addressChanged
    /// `RDMA_CM_EVENT_TIMEWAIT_EXIT`: the queue pair left the time-wait state after a
    /// disconnect and may be reused.
    case timeWaitExit
    /// Any other event, with its `enum rdma_cm_event_type` code.
    case other(code: UInt32)

    /// The name `rdma_event_str` gives the event.
    public var description: String {
        switch self {
        case .established: "RDMA_CM_EVENT_ESTABLISHED"
        case .disconnected: "RDMA_CM_EVENT_DISCONNECTED"
        case .rejected(let data): "RDMA_CM_EVENT_REJECTED (\(data.count) bytes of private data)"
        case .unreachable: "RDMA_CM_EVENT_UNREACHABLE"
        case .connectionError: "RDMA_CM_EVENT_CONNECT_ERROR"
        case .deviceRemoved: "RDMA_CM_EVENT_DEVICE_REMOVAL"
        case .addressChanged: "RDMA_CM_EVENT_ADDR_CHANGE"
        case .timeWaitExit: "RDMA_CM_EVENT_TIMEWAIT_EXIT"
        case .other(let code): "event \(code)"
        }
    }

    /// Whether the connection is over once this event arrives.
    public var endsConnection: Bool {
        switch self {
        case .disconnected, .rejected, .unreachable, .connectionError, .deviceRemoved: true
        default: false
        }
    }
}
