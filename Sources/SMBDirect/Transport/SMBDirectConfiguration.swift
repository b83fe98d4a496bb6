/// What one side of an SMB Direct connection offers and how it behaves: the abstract
/// data model parameters of MS-SMBD 3.1.1.1, with their default values, plus the
/// limits of this implementation.
public struct SMBDirectConfiguration: Hashable, Sendable {
    /// The receives kept posted, and so the most credits granted to the peer
    /// (`ReceiveCreditMax`, 255).
    public var receiveCreditMax: Int
    /// The send credits asked of the peer, as a total (`SendCreditMax`, 255).
    public var sendCreditTarget: Int
    /// The most bytes sent in one message, header included (`MaxSendSize`, 1364).
    public var maxSendSize: Int
    /// The most bytes received in one message (`MaxReceiveSize`, 8192): the size of each receive buffer.
    public var maxReceiveSize: Int
    /// The largest upper-layer message reassembled from fragments (`MaxFragmentedSize`, 1 MiB).
    public var maxFragmentedSize: Int
    /// The most bytes one RDMA transfer of the upper layer may move (`MaxReadWriteSize`, 1 MiB).
    public var maxReadWriteSize: Int
    /// The most payload SGEs in one send, after the header's SGE 0 (the kernel uses 5).
    public var maxPayloadSGEs: Int
    /// The most credits granted in one message; lower than ``receiveCreditMax`` makes a
    /// peer that grants slowly.
    public var maxCreditsPerGrant: Int
    /// How long the connection may be idle before a keepalive asks the peer to
    /// answer, and how long that answer may take (`KeepaliveInterval`, 120 s).
    public var keepaliveInterval: Duration
    /// How long a blocking operation waits for the peer before the connection fails.
    public var timeout: Duration
    /// The most RDMA READ or WRITE requests outstanding at once.
    public var maxRDMAOperations: Int
    /// The bytes of received messages held for the application before receives are
    /// no longer reposted (1 MiB): beyond it, credits are granted back only as the
    /// application reads, so a peer cannot grow the connection's memory (see
    /// ``SMBDirectConnection/receiveMemoryBound``).
    public var maxReceiveBacklog: Int

    /// A configuration; every parameter defaults to the value MS-SMBD gives it, or to this
    /// implementation's default where the specification gives none.
    public init(receiveCreditMax: Int = 255, sendCreditTarget: Int = 255, maxSendSize: Int = 1364,
                maxReceiveSize: Int = 8192, maxFragmentedSize: Int = 1 << 20, maxReadWriteSize: Int = 1 << 20,
                maxPayloadSGEs: Int = 5, maxCreditsPerGrant: Int = .max, keepaliveInterval: Duration = .seconds(120),
                timeout: Duration = .seconds(30), maxRDMAOperations: Int = 16, maxReceiveBacklog: Int = 1 << 20) {
        precondition((1...Int(UInt16.max)).contains(receiveCreditMax), "receiveCreditMax is 1...65535")
        precondition((1...Int(UInt16.max)).contains(sendCreditTarget), "sendCreditTarget is 1...65535")
        precondition(maxSendSize > SMBDirectDataTransfer.payloadOffset && maxSendSize <= Int(UInt32.max),
                     "maxSendSize leaves room for a header and a payload byte")
        precondition(maxReceiveSize >= Int(SMBDirectNegotiateRequest.minReceiveSize) && maxReceiveSize <= Int(UInt32.max),
                     "maxReceiveSize is at least 128")
        precondition(maxFragmentedSize >= Int(SMBDirectNegotiateRequest.minFragmentedSize) && maxFragmentedSize <= Int(UInt32.max),
                     "maxFragmentedSize is at least 128 KiB")
        precondition(maxReadWriteSize > 0 && maxReadWriteSize <= Int(UInt32.max), "maxReadWriteSize is positive")
        precondition(maxPayloadSGEs > 0, "a send carries at least one payload SGE")
        precondition(maxCreditsPerGrant > 0, "a grant gives at least one credit")
        precondition(maxRDMAOperations > 0, "at least one RDMA operation may be outstanding")
        precondition(maxReceiveBacklog > 0, "the receive backlog holds at least one byte")
        self.receiveCreditMax = receiveCreditMax
        self.sendCreditTarget = sendCreditTarget
        self.maxSendSize = maxSendSize
        self.maxReceiveSize = maxReceiveSize
        self.maxFragmentedSize = maxFragmentedSize
        self.maxReadWriteSize = maxReadWriteSize
        self.maxPayloadSGEs = maxPayloadSGEs
        self.maxCreditsPerGrant = maxCreditsPerGrant
        self.keepaliveInterval = keepaliveInterval
        self.timeout = timeout
        self.maxRDMAOperations = maxRDMAOperations
        self.maxReceiveBacklog = maxReceiveBacklog
    }

    /// The Negotiate Request an initiator with this configuration sends (MS-SMBD 3.1.5.2).
    public var negotiateRequest: SMBDirectNegotiateRequest {
        SMBDirectNegotiateRequest(
            creditsRequested: UInt16(sendCreditTarget), preferredSendSize: UInt32(maxSendSize),
            maxReceiveSize: UInt32(maxReceiveSize), maxFragmentedSize: UInt32(maxFragmentedSize))
    }
}
