/// What a connection has done: messages, SGEs, credits, keepalives and RDMA bytes.
public struct SMBDirectStatistics: Hashable, Sendable {
    /// Data Transfer messages sent (negotiation excluded).
    public var messagesSent = 0
    /// Data Transfer messages received.
    public var messagesReceived = 0
    /// Messages sent that carried no payload (credit grants, keepalives, keepalive answers).
    public var emptyMessagesSent = 0
    /// Upper-layer messages sent, each counted once however many fragments it took.
    public var upperLayerMessagesSent = 0
    /// Upper-layer messages received whole (after reassembly).
    public var upperLayerMessagesReceived = 0
    /// Upper-layer bytes sent in messages.
    public var payloadBytesSent = 0
    /// SGEs of all messages sent, the header's SGE 0 included.
    public var sgesSent = 0
    /// Payload SGEs taken directly from callers' iterators.
    public var payloadSGEsSent = 0
    /// The most SGEs in one message.
    public var maxSGEsPerMessage = 0
    /// Credits granted to the peer.
    public var creditsGranted = 0
    /// Credits the peer granted this side.
    public var creditsReceived = 0
    /// Receives not reposted at once because the application had not read the
    /// messages before them (each is reposted, and granted, as it reads).
    public var receivesParked = 0
    /// Credits the peer granted beyond the total this side asked for, and ignored.
    public var excessCreditsIgnored = 0
    /// Times a send found no credit and waited for the peer.
    public var creditStalls = 0
    /// Keepalives sent (messages with `SMB_DIRECT_RESPONSE_REQUESTED`).
    public var keepalivesSent = 0
    /// Answers sent to the peer's keepalives.
    public var keepalivesAnswered = 0
    /// Bytes this side moved by RDMA READ.
    public var rdmaReadBytes = 0
    /// Bytes this side moved by RDMA WRITE.
    public var rdmaWriteBytes = 0

    /// The statistics of a connection that has done nothing.
    public init() {}

    /// The mean number of SGEs per message sent.
    public var sgesPerMessage: Double { messagesSent == 0 ? 0 : Double(sgesSent) / Double(messagesSent) }
}
