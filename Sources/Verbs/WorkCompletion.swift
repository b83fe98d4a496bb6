/// The outcome of a work request, with the values of libibverbs' `enum ibv_wc_status`.
public enum WorkCompletionStatus: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// `IBV_WC_SUCCESS`.
    case success = 0
    /// `IBV_WC_LOC_LEN_ERR`: a message longer than the port allows, or a receive buffer too short for it.
    case localLengthError = 1
    /// `IBV_WC_LOC_QP_OP_ERR`.
    case localQueuePairOperationError = 2
    /// `IBV_WC_LOC_EEC_OP_ERR`.
    case localEEContextOperationError = 3
    /// `IBV_WC_LOC_PROT_ERR`: an SGE with an unknown lkey, outside its region, or needing
    /// local write access its region lacks.
    case localProtectionError = 4
    /// `IBV_WC_WR_FLUSH_ERR`: the queue pair was in the error state.
    case workRequestFlushError = 5
    /// `IBV_WC_MW_BIND_ERR`.
    case memoryWindowBindError = 6
    /// `IBV_WC_BAD_RESP_ERR`.
    case badResponseError = 7
    /// `IBV_WC_LOC_ACCESS_ERR`.
    case localAccessError = 8
    /// `IBV_WC_REM_INV_REQ_ERR`: the responder could not take the request (its receive buffer was too short).
    case remoteInvalidRequestError = 9
    /// `IBV_WC_REM_ACCESS_ERR`: an rkey the responder does not know, outside its region, or lacking remote access.
    case remoteAccessError = 10
    /// `IBV_WC_REM_OP_ERR`: the responder failed the operation (its receive SGEs were bad).
    case remoteOperationError = 11
    /// `IBV_WC_RETRY_EXC_ERR`: the responder never answered (its queue pair was not ready).
    case retryExceededError = 12
    /// `IBV_WC_RNR_RETRY_EXC_ERR`.
    case receiverNotReadyRetryExceededError = 13
    /// `IBV_WC_LOC_RDD_VIOL_ERR`.
    case localRDDViolationError = 14
    /// `IBV_WC_REM_INV_RD_REQ_ERR`.
    case remoteInvalidRDRequestError = 15
    /// `IBV_WC_REM_ABORT_ERR`.
    case remoteAbortError = 16
    /// `IBV_WC_INV_EECN_ERR`.
    case invalidEECNumberError = 17
    /// `IBV_WC_INV_EEC_STATE_ERR`.
    case invalidEECStateError = 18
    /// `IBV_WC_FATAL_ERR`.
    case fatalError = 19
    /// `IBV_WC_RESP_TIMEOUT_ERR`.
    case responseTimeoutError = 20
    /// `IBV_WC_GENERAL_ERR`.
    case generalError = 21

    /// The name libibverbs' `ibv_wc_status_str` gives the status.
    public var description: String {
        switch self {
        case .success: "success"
        case .localLengthError: "local length error"
        case .localQueuePairOperationError: "local QP operation error"
        case .localEEContextOperationError: "local EE context operation error"
        case .localProtectionError: "local protection error"
        case .workRequestFlushError: "Work Request Flushed Error"
        case .memoryWindowBindError: "memory management operation error"
        case .badResponseError: "bad response error"
        case .localAccessError: "local access error"
        case .remoteInvalidRequestError: "remote invalid request error"
        case .remoteAccessError: "remote access error"
        case .remoteOperationError: "remote operation error"
        case .retryExceededError: "transport retry counter exceeded"
        case .receiverNotReadyRetryExceededError: "RNR retry counter exceeded"
        case .localRDDViolationError: "local RDD violation error"
        case .remoteInvalidRDRequestError: "remote invalid RD request"
        case .remoteAbortError: "aborted error"
        case .invalidEECNumberError: "invalid EE context number"
        case .invalidEECStateError: "invalid EE context state"
        case .fatalError: "fatal error"
        case .responseTimeoutError: "response timeout error"
        case .generalError: "general error"
        }
    }
}

/// What a completed work request did, with the values of `enum ibv_wc_opcode`.
public enum WorkCompletionOpcode: UInt32, Sendable, CustomStringConvertible {
    /// `IBV_WC_SEND`: a SEND finished.
    case send = 0
    /// `IBV_WC_RDMA_WRITE`.
    case rdmaWrite = 1
    /// `IBV_WC_RDMA_READ`.
    case rdmaRead = 2
    /// `IBV_WC_COMP_SWAP`.
    case compareAndSwap = 3
    /// `IBV_WC_FETCH_ADD`.
    case fetchAndAdd = 4
    /// `IBV_WC_BIND_MW`.
    case bindMemoryWindow = 5
    /// `IBV_WC_LOCAL_INV`.
    case localInvalidate = 6
    /// A receive consumed by a SEND.
    case receive = 128
    /// A receive consumed by an RDMA WRITE with immediate data.
    case receiveRDMAWithImmediate = 129

    /// The opcode's libibverbs name without its `IBV_WC_` prefix, such as `RDMA_WRITE`.
    public var description: String {
        switch self {
        case .send: "SEND"
        case .rdmaWrite: "RDMA_WRITE"
        case .rdmaRead: "RDMA_READ"
        case .compareAndSwap: "COMP_SWAP"
        case .fetchAndAdd: "FETCH_ADD"
        case .bindMemoryWindow: "BIND_MW"
        case .localInvalidate: "LOCAL_INV"
        case .receive: "RECV"
        case .receiveRDMAWithImmediate: "RECV_RDMA_WITH_IMM"
        }
    }
}

/// One work completion: the userspace form of `struct ibv_wc`.
public struct WorkCompletion: Hashable, Sendable, CustomStringConvertible {
    /// The work request's identifier (`wr_id`).
    public var id: UInt64
    /// The outcome.
    public var status: WorkCompletionStatus
    /// What completed. Only meaningful on success, as with libibverbs.
    public var opcode: WorkCompletionOpcode
    /// For receives: the bytes that arrived (`byte_len`).
    public var byteCount: Int
    /// Immediate data that came with a SEND or RDMA WRITE (`IBV_WC_WITH_IMM`).
    public var immediateData: UInt32?
    /// The local queue pair's number (`qp_num`).
    public var queuePairNumber: UInt32

    /// The completion of work request `id`, as a device reports it in `struct ibv_wc`.
    public init(id: UInt64, status: WorkCompletionStatus, opcode: WorkCompletionOpcode, byteCount: Int,
                immediateData: UInt32? = nil, queuePairNumber: UInt32) {
        self.id = id
        self.status = status
        self.opcode = opcode
        self.byteCount = byteCount
        self.immediateData = immediateData
        self.queuePairNumber = queuePairNumber
    }

    /// The identifier, opcode, status, byte count and immediate data, for logs.
    public var description: String {
        "wc(id \(id), \(opcode), \(status), \(byteCount) bytes\(immediateData.map { ", imm 0x\(String($0, radix: 16))" } ?? ""))"
    }
}
