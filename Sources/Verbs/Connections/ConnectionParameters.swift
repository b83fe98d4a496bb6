#if canImport(Glibc)
import Glibc
#endif

/// What one side of a connection offers the other when it connects or accepts
/// (`struct rdma_conn_param`): private data, RDMA READ depths and retry counts.
public struct ConnectionParameters: Hashable, Sendable {
    /// Bytes carried to the peer with the request or the reply, such as the address
    /// and rkey of a buffer the peer may access. At most
    /// ``maxRequestPrivateData`` bytes when connecting and ``maxReplyPrivateData``
    /// when accepting (the limits of the connection manager's TCP port space over
    /// InfiniBand and RoCE).
    public var privateData: [UInt8]
    /// How many RDMA READs (and atomics) the peer may have outstanding against this
    /// side (`responder_resources`); the device's limit caps it.
    public var responderResources: Int
    /// How many RDMA READs (and atomics) this side keeps outstanding against the peer
    /// (`initiator_depth`); the device's limit caps it.
    public var initiatorDepth: Int
    /// How often the device retransmits a request the peer did not acknowledge, 0
    /// through 7 (`retry_count`).
    public var retryCount: Int
    /// How often the device retries a send the peer refused for want of a posted
    /// receive, 0 through 7, 7 meaning forever (`rnr_retry_count`).
    public var receiverNotReadyRetryCount: Int

    /// The most private-data bytes a connection request carries (`rdma_connect`).
    public static let maxRequestPrivateData = 56
    /// The most private-data bytes an accept carries (`rdma_accept`).
    public static let maxReplyPrivateData = 196
    /// The most private-data bytes a rejection carries (`rdma_reject`).
    public static let maxRejectPrivateData = 148

    /// Connection parameters; by default no private data, one RDMA READ in flight
    /// each way, 7 transport retries and 7 receiver-not-ready retries (infinite, as
    /// rdma-core's examples use).
    public init(privateData: [UInt8] = [], responderResources: Int = 1, initiatorDepth: Int = 1, retryCount: Int = 7,
                receiverNotReadyRetryCount: Int = 7) {
        self.privateData = privateData
        self.responderResources = responderResources
        self.initiatorDepth = initiatorDepth
        self.retryCount = retryCount
        self.receiverNotReadyRetryCount = receiverNotReadyRetryCount
    }

    /// Checks the parameters a side sends; `limit` is the private-data limit of the message.
    /// - Throws: `EINVAL` with `call` for private data beyond `limit`, a negative depth,
    ///   or a retry count outside 0 through 7.
    package func validate(for call: VerbsCall, privateDataLimit limit: Int) throws(VerbsError) {
        guard privateData.count <= limit else {
            throw VerbsError(call, errno: EINVAL, "\(privateData.count) bytes of private data; at most \(limit) fit")
        }
        guard responderResources >= 0, initiatorDepth >= 0 else {
            throw VerbsError(call, errno: EINVAL, "negative RDMA READ depth")
        }
        guard (0...7).contains(retryCount), (0...7).contains(receiverNotReadyRetryCount) else {
            throw VerbsError(call, errno: EINVAL, "retry counts are 0 through 7")
        }
    }
}
