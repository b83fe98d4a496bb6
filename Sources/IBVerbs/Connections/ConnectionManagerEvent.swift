#if RDMA
import CVerbs
import Verbs

/// A connection-manager event, copied out of librdmacm's `struct rdma_cm_event` so
/// that the event can be acknowledged at once (its private data lives only until
/// `rdma_ack_cm_event`).
struct ConnectionManagerEvent {
    /// The event's type.
    let type: rdma_cm_event_type
    /// The status librdmacm reports with it (a reject reason, an errno).
    let status: Int32
    /// The identifier the event is for: for a connection request, the new one.
    let id: UnsafeMutablePointer<rdma_cm_id>?
    /// What the peer sent with a request, a reply or a rejection.
    let peer: ConnectionParameters

    /// Copies `event` and acknowledges it.
    init(taking event: UnsafeMutablePointer<rdma_cm_event>) {
        type = event.pointee.event
        status = event.pointee.status
        id = event.pointee.id
        let conn = event.pointee.param.conn
        let data = conn.private_data.map {
            Array(UnsafeRawBufferPointer(start: $0, count: Int(conn.private_data_len)))
        } ?? []
        peer = ConnectionParameters(privateData: data, responderResources: Int(conn.responder_resources),
                                    initiatorDepth: Int(conn.initiator_depth), retryCount: Int(min(conn.retry_count, 7)),
                                    receiverNotReadyRetryCount: Int(min(conn.rnr_retry_count, 7)))
        IBVerbsCalls.acknowledge(event)
    }

    /// The event as the connection API names it.
    var connectionEvent: ConnectionEvent {
        switch type {
        case RDMA_CM_EVENT_ESTABLISHED: .established
        case RDMA_CM_EVENT_DISCONNECTED: .disconnected
        case RDMA_CM_EVENT_REJECTED: .rejected(privateData: peer.privateData)
        case RDMA_CM_EVENT_UNREACHABLE: .unreachable
        case RDMA_CM_EVENT_CONNECT_ERROR: .connectionError
        case RDMA_CM_EVENT_DEVICE_REMOVAL: .deviceRemoved
        case RDMA_CM_EVENT_ADDR_CHANGE: .addressChanged
        case RDMA_CM_EVENT_TIMEWAIT_EXIT: .timeWaitExit
        default: .other(code: type.rawValue)
        }
    }

    /// The error for a connection attempt that got this event instead of `expected`:
    /// `ECONNREFUSED` for a rejection, `EHOSTUNREACH` for an address or route that did
    /// not resolve or a peer that did not answer, `ECONNABORTED` otherwise.
    func failure(expecting expected: rdma_cm_event_type, call: VerbsCall) -> VerbsError {
        let code: Int32 = switch type {
        case RDMA_CM_EVENT_REJECTED: ECONNREFUSED
        case RDMA_CM_EVENT_ADDR_ERROR, RDMA_CM_EVENT_ROUTE_ERROR, RDMA_CM_EVENT_UNREACHABLE: EHOSTUNREACH
        default: ECONNABORTED
        }
        return VerbsError(call, errno: code,
                          "expected \(IBVerbsCalls.eventName(expected)), got \(IBVerbsCalls.eventName(type)) (status \(status))",
                          connectionEvent: connectionEvent)
    }
}

/// A librdmacm event channel whose descriptor is non-blocking: one per listener and
/// one per connection, so that each one's events reach only it.
final class ConnectionManagerChannel {
    let channel: UnsafeMutablePointer<rdma_event_channel>

    /// Creates the channel. The corresponding C function is `rdma_create_event_channel`.
    init() throws(VerbsError) {
        channel = try IBVerbsCalls.createEventChannel()
        do {
            try IBVerbsCalls.setNonBlocking(IBVerbsCalls.eventChannelDescriptor(channel), .createEventChannel)
        } catch {
            IBVerbsCalls.destroyEventChannel(channel)
            throw error
        }
    }

    deinit { IBVerbsCalls.destroyEventChannel(channel) }

    /// The channel's descriptor.
    var descriptor: Int32 { IBVerbsCalls.eventChannelDescriptor(channel) }

    /// The next event, copied and acknowledged; `nil` when none waits.
    func take() throws(VerbsError) -> ConnectionManagerEvent? {
        try IBVerbsCalls.takeEvent(channel).map(ConnectionManagerEvent.init(taking:))
    }

    /// The next event, waiting for it until `deadline`.
    /// - Throws: `ETIMEDOUT`, reported as `call`, when none came in time.
    func next(until deadline: ContinuousClock.Instant, call: VerbsCall) throws(VerbsError) -> ConnectionManagerEvent {
        while true {
            if let event = try take() { return event }
            guard try sleepUntilReadable(descriptor, until: deadline, call: .getConnectionEvent) else {
                throw VerbsError(call, errno: ETIMEDOUT, "no connection-manager event in time")
            }
        }
    }

    /// The next event, which must be `type`.
    /// - Throws: What ``next(until:call:)`` throws; ``ConnectionManagerEvent/failure(expecting:call:)`` for another event.
    func expect(_ type: rdma_cm_event_type, until deadline: ContinuousClock.Instant,
                call: VerbsCall) throws(VerbsError) -> ConnectionManagerEvent {
        let event = try next(until: deadline, call: call)
        guard event.type == type else { throw event.failure(expecting: type, call: call) }
        return event
    }
}
#endif
