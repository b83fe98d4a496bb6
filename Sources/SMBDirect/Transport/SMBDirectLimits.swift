/// The sizes both sides agreed on during negotiation (MS-SMBD 3.2.5 for the
/// initiator, 3.3.5 for the responder).
public struct SMBDirectLimits: Hashable, Sendable {
    /// The most bytes this side puts in one message, header included.
    public var maxSendSize: Int
    /// The most bytes this side accepts in one message.
    public var maxReceiveSize: Int
    /// The largest upper-layer message the peer reassembles: the most this side sends as fragments.
    public var maxFragmentedSendSize: Int
    /// The largest upper-layer message this side reassembles.
    public var maxFragmentedReceiveSize: Int
    /// The most bytes one RDMA transfer of the upper layer may move.
    public var maxReadWriteSize: Int

    /// Limits with the given sizes, as negotiation settles them.
    public init(maxSendSize: Int, maxReceiveSize: Int, maxFragmentedSendSize: Int, maxFragmentedReceiveSize: Int,
                maxReadWriteSize: Int) {
        self.maxSendSize = maxSendSize
        self.maxReceiveSize = maxReceiveSize
        self.maxFragmentedSendSize = maxFragmentedSendSize
        self.maxFragmentedReceiveSize = maxFragmentedReceiveSize
        self.maxReadWriteSize = maxReadWriteSize
    }

    /// The payload bytes one message carries at most.
    public var maxPayloadPerMessage: Int { maxSendSize - SMBDirectDataTransfer.payloadOffset }

    /// The responder's side of a negotiation: what it agrees to with the initiator's
    /// `request` (which decoded, so its fields are valid). The responder sends no
    /// more than the initiator receives and receives no more than the initiator
    /// prefers to send; it fragments within the initiator's reassembly size.
    public init(configuration: SMBDirectConfiguration, request: SMBDirectNegotiateRequest) {
        self.init(
            maxSendSize: min(configuration.maxSendSize, Int(request.maxReceiveSize)),
            maxReceiveSize: min(configuration.maxReceiveSize, Int(request.preferredSendSize)),
            maxFragmentedSendSize: Int(request.maxFragmentedSize),
            maxFragmentedReceiveSize: configuration.maxFragmentedSize,
            maxReadWriteSize: configuration.maxReadWriteSize)
    }

    /// The initiator's side of a negotiation, from the responder's `response`.
    ///
    /// - Throws: ``SMBDirectDecodingError/invalidField(_:value:)`` when the responder
    ///   would send messages larger than this side receives, or would receive
    ///   messages too small for a header and a payload byte.
    public init(configuration: SMBDirectConfiguration, response: SMBDirectNegotiateResponse) throws(SMBDirectDecodingError) {
        guard Int(response.preferredSendSize) <= configuration.maxReceiveSize else {
            throw .invalidField(.preferredSendSize, value: response.preferredSendSize)
        }
        self.init(
            maxSendSize: min(configuration.maxSendSize, Int(response.maxReceiveSize)),
            maxReceiveSize: configuration.maxReceiveSize,
            maxFragmentedSendSize: Int(response.maxFragmentedSize),
            maxFragmentedReceiveSize: configuration.maxFragmentedSize,
            maxReadWriteSize: min(configuration.maxReadWriteSize, Int(response.maxReadWriteSize)))
    }
}
