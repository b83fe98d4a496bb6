#if RDMA
import CVerbs
import Glibc
import Locking
import Verbs

/// A reliable-connected queue pair of an ``IBVerbs`` device.
///
/// ``modify(to:remote:)`` moves it through RESET → INIT → RTR → RTS to the remote
/// endpoint's queue pair number, PSN, LID and GID (with a global route header from
/// the device's source GID whenever the remote has a GID), on the smaller of the two
/// ports' MTUs. That connects two queue pairs with no connection manager: the two
/// sides exchange their ``endpoint``s by any means (`QueuePairEndpoint` is
/// `Codable`), or `QueuePair.connect(_:_:)` hands them over in one process.
/// ``RDMAConnection`` and ``RDMAListener`` connect through librdmacm instead.
///
/// `SendWorkRequest.sges` is handed to `ibv_post_send` as it is: `SGE` has the
/// layout of `struct ibv_sge`.
public final class IBVerbsQueuePair: QueuePair, @unchecked Sendable {
    /// The domain; kept alive until the queue pair is gone.
    public let domain: IBVerbsProtectionDomain
    /// Where send requests complete; kept alive until the queue pair is gone.
    public let sendCompletions: IBVerbsCompletionQueue
    /// Where receive requests complete; kept alive until the queue pair is gone.
    public let receiveCompletions: IBVerbsCompletionQueue
    /// What the device granted: at least what was asked for.
    public let capabilities: QueuePairCapabilities
    /// The queue pair number (`qp_num`).
    public let number: UInt32
    /// The PSN the queue pair's sends start at (`sq_psn`), chosen at random.
    public let packetSequenceNumber = UInt32.random(in: 0..<QueuePairEndpoint.numberLimit)
    /// The port as `ibv_query_port` reported it when the queue pair was created: the
    /// LID and active MTU of its ``endpoint``.
    public let port: IBVerbsPort
    let handle: LockedValue<IBVerbsHandle<ibv_qp>?>
    /// The reusable request chain of ``postSend(chain:)``, used under `handle`'s lock.
    let sendChain = IBVerbsSendChain()

    /// Local ACK timeout exponent: 4.096 µs × 2^18 ≈ 1 s, generous for emulated machines.
    static let ackTimeout: UInt8 = 18
    /// Transport and receiver-not-ready retries (7: retry receiver-not-ready forever).
    static let retries: UInt8 = 7
    /// Minimal receiver-not-ready NAK timer code (12: 0.64 ms).
    static let minimumRNRTimer: UInt8 = 12

    init(domain: IBVerbsProtectionDomain, sendCompletions: IBVerbsCompletionQueue,
         receiveCompletions: IBVerbsCompletionQueue, capabilities: QueuePairCapabilities) throws(VerbsError) {
        precondition(SGE.layoutMatchesIBVSGE, "SGE must have the layout of struct ibv_sge to be posted without conversion")
        let port = try domain.device.queryPort()
        var initial = ibv_qp_init_attr()
        initial.qp_type = IBV_QPT_RC
        initial.sq_sig_all = capabilities.signalsAll ? 1 : 0
        initial.cap.max_send_wr = UInt32(clamping: capabilities.maxSendWorkRequests)
        initial.cap.max_recv_wr = UInt32(clamping: capabilities.maxReceiveWorkRequests)
        initial.cap.max_send_sge = UInt32(clamping: capabilities.maxSendSGEs)
        initial.cap.max_recv_sge = UInt32(clamping: capabilities.maxReceiveSGEs)
        initial.cap.max_inline_data = UInt32(clamping: capabilities.maxInlineData)
        func create(_ send: UnsafeMutablePointer<ibv_cq>, _ receive: UnsafeMutablePointer<ibv_cq>) throws(VerbsError) -> UnsafeMutablePointer<ibv_qp> {
            initial.send_cq = send
            initial.recv_cq = receive
            return try domain.withPD(.createQueuePair) { (pd) throws(VerbsError) in try IBVerbsCalls.createQP(pd, &initial) }
        }
        // One queue may take both kinds of completions; its lock is taken once.
        let qp = try sendCompletions.withCQ(.createQueuePair) { (send) throws(VerbsError) in
            if receiveCompletions === sendCompletions { return try create(send, send) }
            return try receiveCompletions.withCQ(.createQueuePair) { (receive) throws(VerbsError) in try create(send, receive) }
        }
        self.domain = domain
        self.port = port
        self.sendCompletions = sendCompletions
        self.receiveCompletions = receiveCompletions
        self.capabilities = QueuePairCapabilities(
            maxSendWorkRequests: Int(initial.cap.max_send_wr), maxReceiveWorkRequests: Int(initial.cap.max_recv_wr),
            maxSendSGEs: Int(initial.cap.max_send_sge), maxReceiveSGEs: Int(initial.cap.max_recv_sge),
            maxInlineData: Int(initial.cap.max_inline_data), signalsAll: capabilities.signalsAll)
        self.number = qp.pointee.qp_num
        self.handle = LockedValue(IBVerbsHandle(qp))
    }

    /// The number, the random starting PSN, the port's LID and active MTU (256 bytes
    /// if the port reported none), and the device's source GID.
    public var endpoint: QueuePairEndpoint {
        QueuePairEndpoint(number: number, packetSequenceNumber: packetSequenceNumber, lid: port.lid,
                          gid: domain.device.gid.bytes, mtu: port.activePathMTU ?? .bytes256)
    }

    /// The state the device reports, or `QueuePairState.error` once destroyed. The
    /// corresponding C function is `ibv_query_qp`.
    public var state: QueuePairState {
        let raw = try? withQP(.modifyQueuePair) { (qp) throws(VerbsError) in try IBVerbsCalls.queryQPState(qp) }
        switch raw {
        case IBV_QPS_RESET: return .reset
        case IBV_QPS_INIT: return .initialized
        case IBV_QPS_RTR: return .readyToReceive
        case IBV_QPS_RTS: return .readyToSend
        default: return .error
        }
    }

    /// Runs `body` with the live `ibv_qp`.
    func withQP<R>(_ call: VerbsCall, _ body: (UnsafeMutablePointer<ibv_qp>) throws(VerbsError) -> R) throws(VerbsError) -> R {
        try handle.withLock { (qp) throws(VerbsError) -> R in
            guard let qp else { throw VerbsError(call, errno: EINVAL, "the queue pair was destroyed") }
            return try body(qp.pointer)
        }
    }

    /// Moves the queue pair to `state`. INIT allows local write and remote read and
    /// write. RTR connects to `remote`'s queue pair number and expects its PSN, on the
    /// smaller of `remote`'s MTU and the port's active MTU, addressed to `remote`'s LID
    /// and, when `remote` has a GID (not all zero), to its GID from the device's source
    /// GID. RTS starts sending at ``packetSequenceNumber`` and sets the ACK timeout and
    /// retries. The corresponding C function is `ibv_modify_qp`.
    /// - Throws: `EINVAL` before calling C for RTR without `remote`, a remote number or
    ///   PSN of more than 24 bits, a GID that is not 16 bytes, or, on a RoCE port, a
    ///   remote without a GID; the provider's error otherwise.
    public func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError) {
        let device = domain.device
        var attributes = ibv_qp_attr()
        var mask: [ibv_qp_attr_mask] = [IBV_QP_STATE]
        switch state {
        case .reset:
            attributes.qp_state = IBV_QPS_RESET
        case .error:
            attributes.qp_state = IBV_QPS_ERR
        case .initialized:
            attributes.qp_state = IBV_QPS_INIT
            attributes.pkey_index = 0
            attributes.port_num = port.number
            attributes.qp_access_flags = AccessFlags.all.rawValue
            mask += [IBV_QP_PKEY_INDEX, IBV_QP_PORT, IBV_QP_ACCESS_FLAGS]
        case .readyToReceive:
            guard let remote else { throw VerbsError(.modifyQueuePair, errno: EINVAL, "RTR needs the remote queue pair's endpoint") }
            if let defect = remote.defect { throw VerbsError(.modifyQueuePair, errno: EINVAL, defect) }
            guard remote.hasGID || !port.isEthernet else {
                throw VerbsError(.modifyQueuePair, errno: EINVAL, "RoCE routes by GID: the remote endpoint has none")
            }
            attributes.qp_state = IBV_QPS_RTR
            attributes.path_mtu = ibv_mtu(min(port.activePathMTU ?? .bytes256, remote.mtu).code)
            attributes.dest_qp_num = remote.number
            attributes.rq_psn = remote.packetSequenceNumber
            attributes.max_dest_rd_atomic = UInt8(clamping: device.maxReadsInFlight)
            attributes.min_rnr_timer = Self.minimumRNRTimer
            attributes.ah_attr.dlid = remote.lid
            attributes.ah_attr.port_num = port.number
            if remote.hasGID {
                attributes.ah_attr.is_global = 1
                withUnsafeMutableBytes(of: &attributes.ah_attr.grh.dgid.raw) { $0.copyBytes(from: remote.gid) }
                attributes.ah_attr.grh.sgid_index = UInt8(clamping: device.gid.index)
                attributes.ah_attr.grh.hop_limit = 64
            }
            mask += [IBV_QP_AV, IBV_QP_PATH_MTU, IBV_QP_DEST_QPN, IBV_QP_RQ_PSN, IBV_QP_MAX_DEST_RD_ATOMIC,
                     IBV_QP_MIN_RNR_TIMER]
        case .readyToSend:
            attributes.qp_state = IBV_QPS_RTS
            attributes.timeout = Self.ackTimeout
            attributes.retry_cnt = Self.retries
            attributes.rnr_retry = Self.retries
            attributes.sq_psn = packetSequenceNumber
            attributes.max_rd_atomic = UInt8(clamping: device.maxReadsInFlight)
            mask += [IBV_QP_TIMEOUT, IBV_QP_RETRY_CNT, IBV_QP_RNR_RETRY, IBV_QP_SQ_PSN, IBV_QP_MAX_QP_RD_ATOMIC]
        }
        try modify(&attributes, mask: Int32(mask.reduce(0) { $0 | $1.rawValue }), "to \(state)")
    }

    /// Applies `attributes` under `mask` (from ``modify(to:remote:)`` or from
    /// librdmacm's `rdma_init_qp_attr`).
    func modify(_ attributes: inout ibv_qp_attr, mask: Int32, _ detail: String) throws(VerbsError) {
        try withQP(.modifyQueuePair) { (qp) throws(VerbsError) in
            try IBVerbsCalls.modifyQP(qp, &attributes, mask: mask, "queue pair \(number) \(detail)")
        }
    }

    /// Posts `request`. The provider refuses what the queue pair cannot take (too many
    /// SGEs, a full queue, a state that cannot send) with the `errno` it chooses. The
    /// corresponding C function is `ibv_post_send`.
    public func postSend(_ request: SendWorkRequest) throws(VerbsError) {
        try request.withIBVWorkRequest { (wr) throws(VerbsError) in
            try withQP(.postSend) { (qp) throws(VerbsError) in try IBVerbsCalls.postSend(qp, &wr) }
        }
    }

    /// Posts `requests` linked into one chain with one `ibv_post_send`; a refused one
    /// is named by `VerbsError.failedRequest`. Chains up to 64 requests long reuse
    /// the queue pair's buffer.
    public func postSend(chain requests: UnsafeBufferPointer<SendWorkRequest>) throws(VerbsError) {
        try withQP(.postSend) { (qp) throws(VerbsError) in try sendChain.post(requests, on: qp) }
    }

    /// Posts `request`. The corresponding C function is `ibv_post_recv`.
    public func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError) {
        try request.withIBVWorkRequest { (wr) throws(VerbsError) in
            try withQP(.postReceive) { (qp) throws(VerbsError) in try IBVerbsCalls.postReceive(qp, &wr) }
        }
    }

    /// Destroys the queue pair; a second call does nothing. Outstanding requests are
    /// discarded without completions.
    public func close() throws(VerbsError) {
        try handle.withLock { (qp) throws(VerbsError) in
            guard let live = qp else { return }
            try IBVerbsCalls.destroyQP(live.pointer)
            qp = nil
        }
    }

    deinit { try? close() }
}

extension SGE {
    /// Whether ``SGE`` has the layout of `struct ibv_sge`, so that arrays of it are
    /// posted without conversion.
    package static let layoutMatchesIBVSGE: Bool = MemoryLayout<SGE>.size == MemoryLayout<ibv_sge>.size
        && MemoryLayout<SGE>.offset(of: \.address) == MemoryLayout<ibv_sge>.offset(of: \.addr)
        && MemoryLayout<SGE>.stride == MemoryLayout<ibv_sge>.stride
        && MemoryLayout<SGE>.offset(of: \.length) == MemoryLayout<ibv_sge>.offset(of: \.length)
        && MemoryLayout<SGE>.offset(of: \.lkey) == MemoryLayout<ibv_sge>.offset(of: \.lkey)
}
#endif
