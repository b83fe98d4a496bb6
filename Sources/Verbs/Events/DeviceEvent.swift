/// An asynchronous event of a device: what `ibv_get_async_event` reports, as a typed
/// value, so that a program learns that a link went down or a queue pair failed
/// instead of waiting for a timeout. The cases carry libibverbs' `enum ibv_event_type`
/// values as their codes.
public enum DeviceEvent: Hashable, Sendable, CustomStringConvertible {
    /// `IBV_EVENT_PORT_ACTIVE`: the port became usable.
    case portActive(port: UInt8)
    /// `IBV_EVENT_PORT_ERR`: the port's link went down; its connections will fail.
    case portError(port: UInt8)
    /// `IBV_EVENT_LID_CHANGE`, `IBV_EVENT_PKEY_CHANGE`, `IBV_EVENT_GID_CHANGE`,
    /// `IBV_EVENT_SM_CHANGE`, `IBV_EVENT_CLIENT_REREGISTER`: the port's addressing changed.
    case portChanged(port: UInt8)
    /// `IBV_EVENT_QP_FATAL`: the queue pair moved to the error state on its own.
    case queuePairFatal(queuePairNumber: UInt32)
    /// `IBV_EVENT_QP_REQ_ERR`: the peer's request broke the transport's rules.
    case queuePairRequestError(queuePairNumber: UInt32)
    /// `IBV_EVENT_QP_ACCESS_ERR`: the peer broke an access rule (an RDMA READ or WRITE out of bounds).
    case queuePairAccessError(queuePairNumber: UInt32)
    /// `IBV_EVENT_COMM_EST`: the first message arrived on a queue pair in RTR.
    case communicationEstablished(queuePairNumber: UInt32)
    /// `IBV_EVENT_SQ_DRAINED`: the send queue drained in the SQD state.
    case sendQueueDrained(queuePairNumber: UInt32)
    /// `IBV_EVENT_QP_LAST_WQE_REACHED`.
    case lastWorkRequestReached(queuePairNumber: UInt32)
    /// `IBV_EVENT_CQ_ERR`: a completion queue overran; its queue pairs are in error.
    case completionQueueError
    /// `IBV_EVENT_DEVICE_FATAL`: the device is gone; close everything.
    case deviceFatal
    /// Any other event, with its `enum ibv_event_type` code.
    case other(code: UInt32)

    /// The name libibverbs' `ibv_event_type_str` gives the event, with what it names.
    public var description: String {
        switch self {
        case .portActive(let port): "port \(port) active"
        case .portError(let port): "port \(port) error"
        case .portChanged(let port): "port \(port) changed"
        case .queuePairFatal(let number): "QP \(number) fatal"
        case .queuePairRequestError(let number): "QP \(number) request error"
        case .queuePairAccessError(let number): "QP \(number) access error"
        case .communicationEstablished(let number): "QP \(number) communication established"
        case .sendQueueDrained(let number): "QP \(number) send queue drained"
        case .lastWorkRequestReached(let number): "QP \(number) last WQE reached"
        case .completionQueueError: "CQ error"
        case .deviceFatal: "device fatal"
        case .other(let code): "event \(code)"
        }
    }

    /// Whether the event means that work on the device or a queue pair has failed.
    public var isFailure: Bool {
        switch self {
        case .portError, .queuePairFatal, .queuePairRequestError, .queuePairAccessError, .completionQueueError, .deviceFatal: true
        default: false
        }
    }
}
