/// The states of a queue pair, as `enum ibv_qp_state` names them.
public enum QueuePairState: String, Sendable, CustomStringConvertible {
    /// `IBV_QPS_RESET`: just created; nothing may be posted.
    case reset
    /// `IBV_QPS_INIT`: receives may be posted.
    case initialized
    /// `IBV_QPS_RTR`: ready to receive; connected to a remote queue pair.
    case readyToReceive
    /// `IBV_QPS_RTS`: ready to send.
    case readyToSend
    /// `IBV_QPS_ERR`: every outstanding and newly posted request completes with
    /// ``WorkCompletionStatus/workRequestFlushError``.
    case error

    /// The short name libibverbs documentation uses: `RESET`, `INIT`, `RTR`, `RTS` or `ERR`.
    public var description: String {
        switch self {
        case .reset: "RESET"
        case .initialized: "INIT"
        case .readyToReceive: "RTR"
        case .readyToSend: "RTS"
        case .error: "ERR"
        }
    }
}

/// The sizes a queue pair is created with (`struct ibv_qp_cap`, plus `sq_sig_all`).
public struct QueuePairCapabilities: Hashable, Sendable {
    /// The deepest send queue (`max_send_wr`).
    public var maxSendWorkRequests: Int
    /// The deepest receive queue (`max_recv_wr`).
    public var maxReceiveWorkRequests: Int
    /// The most SGEs in one send request (`max_send_sge`).
    public var maxSendSGEs: Int
    /// The most SGEs in one receive request (`max_recv_sge`).
    public var maxReceiveSGEs: Int
    /// The most bytes one send request may carry inline (`max_inline_data`).
    public var maxInlineData: Int
    /// Whether every send request completes with a completion, signalled or not (`sq_sig_all`).
    public var signalsAll: Bool

    /// Queue-pair sizes; by default 64 requests deep on each queue, 6 SGEs per request,
    /// no inline data, and completions for signalled send requests only.
    public init(maxSendWorkRequests: Int = 64, maxReceiveWorkRequests: Int = 64, maxSendSGEs: Int = 6,
                maxReceiveSGEs: Int = 6, maxInlineData: Int = 0, signalsAll: Bool = false) {
        self.maxSendWorkRequests = maxSendWorkRequests
        self.maxReceiveWorkRequests = maxReceiveWorkRequests
        self.maxSendSGEs = maxSendSGEs
        self.maxReceiveSGEs = maxReceiveSGEs
        self.maxInlineData = maxInlineData
        self.signalsAll = signalsAll
    }
}

/// What a peer needs to know to connect to a queue pair: its number and the address
/// of its port (a GID; SoftVerbs uses the device's name).
public struct QueuePairEndpoint: Hashable, Sendable {
    /// The queue pair number (`qp_num`).
    public var number: UInt32
    /// The port's global identifier.
    public var gid: [UInt8]

    /// The endpoint of queue pair `number` on the port with `gid`.
    public init(number: UInt32, gid: [UInt8]) {
        self.number = number
        self.gid = gid
    }
}

/// A reliable-connected queue pair: a send queue and a receive queue, connected to
/// exactly one remote queue pair.
public protocol QueuePair: AnyObject, Sendable {
    /// What a peer uses to connect to this queue pair.
    var endpoint: QueuePairEndpoint { get }
    /// The current state. The corresponding C function is `ibv_query_qp`.
    var state: QueuePairState { get }
    /// The sizes it was created with.
    var capabilities: QueuePairCapabilities { get }

    /// Moves the queue pair to `state`: reset → init → RTR (which needs `remote`) → RTS;
    /// any state → error or reset. Moving to error flushes every outstanding request.
    /// The corresponding C function is `ibv_modify_qp`.
    /// - Throws: `EINVAL` for any other transition, or RTR without a remote endpoint.
    func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError)

    /// Posts a send-queue request. The corresponding C function is `ibv_post_send`.
    /// - Throws: `EINVAL` in a state that cannot send, with more SGEs than
    ///   ``QueuePairCapabilities/maxSendSGEs``, or inline data beyond the limit;
    ///   `ENOMEM` when the send queue is full. A refused request is not queued.
    func postSend(_ request: SendWorkRequest) throws(VerbsError)

    /// Posts a chain of send-queue requests in one call, in order: one doorbell for
    /// all of them on a device. The corresponding C function is `ibv_post_send` with
    /// the requests linked by `next`.
    /// - Throws: What ``postSend(_:)`` lists, with ``VerbsError/failedRequest`` set to
    ///   the position of the refused request: those before it were posted, it and the
    ///   ones after it were not.
    func postSend(chain requests: UnsafeBufferPointer<SendWorkRequest>) throws(VerbsError)

    /// Posts a receive-queue request. The corresponding C function is `ibv_post_recv`.
    /// - Throws: `EINVAL` in the reset state or with more SGEs than
    ///   ``QueuePairCapabilities/maxReceiveSGEs``; `ENOMEM` when the receive queue is full.
    func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError)

    /// Destroys the queue pair. The corresponding C function is `ibv_destroy_qp`.
    func close() throws(VerbsError)
}

extension QueuePair {
    /// Connects two queue pairs to each other and makes both ready to send: each goes
    /// reset → init → RTR → RTS, as an out-of-band exchange of endpoints would do.
    public static func connect<Peer: QueuePair>(_ local: Self, _ remote: Peer) throws(VerbsError) {
        for state in [QueuePairState.initialized, .readyToReceive, .readyToSend] {
            try local.modify(to: state, remote: state == .readyToReceive ? remote.endpoint : nil)
            try remote.modify(to: state, remote: state == .readyToReceive ? local.endpoint : nil)
        }
    }
}
