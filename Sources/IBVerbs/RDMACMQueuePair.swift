#if RDMA
import CVerbs
import Glibc
import Verbs

/// The queue pair of an ``RDMACMDomain``, made by `rdma_create_qp` and connected by
/// ``RDMACMDomain/connect(responderResources:initiatorDepth:)``.
///
/// Its transitions belong to the connection manager: ``modify(to:remote:)`` only
/// accepts `QueuePairState.error`, which disconnects (`rdma_disconnect` moves the
/// queue pair to the error state and tells the server).
public final class RDMACMQueuePair: QueuePair, @unchecked Sendable {
    /// The domain; kept alive until the queue pair is destroyed.
    public let domain: RDMACMDomain
    /// The sizes it was created with.
    public let capabilities: QueuePairCapabilities
    /// The queue pair number (`qp_num`).
    public let number: UInt32
    let completionQueues: (send: RDMACMCompletionQueue, receive: RDMACMCompletionQueue)
    var qp: UnsafeMutablePointer<ibv_qp>?
    var lastState: QueuePairState = .reset
    /// The reusable request chain of ``postSend(chain:)``.
    let sendChain = IBVerbsSendChain()

    init(domain: RDMACMDomain, qp: UnsafeMutablePointer<ibv_qp>, capabilities: QueuePairCapabilities,
         completionQueues: (RDMACMCompletionQueue, RDMACMCompletionQueue)) {
        self.domain = domain
        self.qp = qp
        self.capabilities = capabilities
        self.number = qp.pointee.qp_num
        self.completionQueues = completionQueues
    }

    /// The number; the GID is the connection manager's business (empty).
    public var endpoint: QueuePairEndpoint { QueuePairEndpoint(number: number, gid: []) }

    /// Ready to send while the connection is established; `QueuePairState.error` once it
    /// was moved to error or destroyed; otherwise the last state it was put in.
    public var state: QueuePairState {
        guard qp != nil else { return .error }
        if lastState == .error { return .error }
        return domain.isConnected ? .readyToSend : lastState
    }

    /// Only `QueuePairState.error`: disconnects, or (before a connection) moves the
    /// queue pair to the error state with `ibv_modify_qp`.
    public func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError) {
        guard state == .error else {
            throw VerbsError(.modifyQueuePair, errno: EINVAL, "the connection manager moves this queue pair to \(state)")
        }
        guard let qp else { throw VerbsError(.modifyQueuePair, errno: EINVAL, "the queue pair was destroyed") }
        if domain.isConnected {
            domain.disconnect()
        } else {
            var attributes = ibv_qp_attr()
            attributes.qp_state = IBV_QPS_ERR
            let status = ibv_modify_qp(qp, &attributes, Int32(IBV_QP_STATE.rawValue))
            guard status == 0 else { throw VerbsError(.modifyQueuePair, errno: status, "ibv_modify_qp to ERR") }
        }
        lastState = .error
    }

    /// Posts `request` (`ibv_post_send`); `SGE` has the layout of `struct ibv_sge`.
    public func postSend(_ request: SendWorkRequest) throws(VerbsError) {
        guard let qp else { throw VerbsError(.postSend, errno: EINVAL, "the queue pair was destroyed") }
        let status = request.withIBVWorkRequest { (wr) -> Int32 in
            var bad: UnsafeMutablePointer<ibv_send_wr>?
            return ibv_post_send(qp, &wr, &bad)
        }
        guard status == 0 else { throw VerbsError(.postSend, errno: status, "ibv_post_send") }
    }

    /// Posts `requests` linked into one chain with one `ibv_post_send`; a refused one
    /// is named by `VerbsError.failedRequest`.
    public func postSend(chain requests: UnsafeBufferPointer<SendWorkRequest>) throws(VerbsError) {
        guard let qp else { throw VerbsError(.postSend, errno: EINVAL, "the queue pair was destroyed") }
        try sendChain.post(requests, on: qp)
    }

    /// Posts `request` (`ibv_post_recv`).
    public func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError) {
        guard let qp else { throw VerbsError(.postReceive, errno: EINVAL, "the queue pair was destroyed") }
        let status = request.withIBVWorkRequest { (wr) -> Int32 in
            var bad: UnsafeMutablePointer<ibv_recv_wr>?
            return ibv_post_recv(qp, &wr, &bad)
        }
        guard status == 0 else { throw VerbsError(.postReceive, errno: status, "ibv_post_recv") }
    }

    /// Destroys the queue pair (`rdma_destroy_qp`), after disconnecting; a second
    /// call does nothing.
    public func close() throws(VerbsError) {
        guard qp != nil else { return }
        domain.disconnect()
        if let identifier = domain.identifier { rdma_destroy_qp(identifier) }
        qp = nil
    }

    deinit { try? close() }
}
#endif
