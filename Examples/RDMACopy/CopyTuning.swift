/// How a session moves its bytes and how long it waits for the peer.
public struct CopyTuning: Hashable, Sendable {
    /// The length of each `iovec` of the client's IOVEC iterator.
    public var segmentSize: Int
    /// The bytes one work-request plan moves.
    public var chunkSize: Int
    /// The most bytes in one RDMA WRITE or READ.
    public var messageSize: Int
    /// How many plans are in flight at once.
    public var window: Int
    /// The most SGEs in one request.
    public var maxSGEs: Int
    /// RDMA READs in flight each way (the device caps it).
    public var readDepth: Int
    /// The longest wait for the peer at any step.
    public var timeout: Duration
    /// How long a client keeps retrying, 1 s apart, while the connection is refused
    /// without an rdma-copy reason (the server is not up yet).
    public var connectRetry: Duration

    /// Tuning for sessions: by default 1 MiB `iovec`s, plans of 1 MiB in requests of
    /// 256 KiB, 8 plans in flight, 16 READs in flight, 30 s waits, no retries.
    public init(segmentSize: Int = 1 << 20, chunkSize: Int = 1 << 20, messageSize: Int = 256 << 10, window: Int = 8,
                maxSGEs: Int = 4, readDepth: Int = 16, timeout: Duration = .seconds(30), connectRetry: Duration = .zero) {
        precondition(segmentSize > 0 && chunkSize > 0 && window > 0 && readDepth > 0, "sizes and depths are positive")
        precondition(messageSize > 0 && messageSize <= segmentSize, "a message spans at most two iovecs: 1...segmentSize")
        precondition(maxSGEs >= 2, "a request needs room for the two iovecs it may span")
        self.segmentSize = segmentSize
        self.chunkSize = chunkSize
        self.messageSize = messageSize
        self.window = window
        self.maxSGEs = maxSGEs
        self.readDepth = readDepth
        self.timeout = timeout
        self.connectRetry = connectRetry
    }

    /// The requests one plan holds: enough for a whole chunk.
    var requestsPerPlan: Int { (chunkSize + messageSize - 1) / messageSize }
    /// The send queue's depth: every plan of the window, and the protocol's SEND.
    var sendDepth: Int { window * requestsPerPlan + 1 }
}

/// How long to wait for a step whose length grows with the transfer (the peer moving
/// or hashing `bytes`): `timeout`, plus a second per MiB, so at least 1 MiB/s.
func patience(_ timeout: Duration, forBytes bytes: Int) -> Duration { timeout + .seconds(bytes >> 20) }
