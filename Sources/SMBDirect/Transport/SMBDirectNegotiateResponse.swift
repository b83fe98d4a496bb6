/// The responder's answer to a Negotiate Request: MS-SMBD 2.2.2 Negotiate Response
/// (32 bytes).
public struct SMBDirectNegotiateResponse: Hashable, Sendable {
    /// The encoded size.
    public static let size = 32
    /// `STATUS_SUCCESS`.
    public static let statusSuccess: UInt32 = 0
    /// `STATUS_NOT_SUPPORTED`: no common version.
    public static let statusNotSupported: UInt32 = 0xC000_00BB

    /// The lowest version the responder supports.
    public var minVersion: UInt16
    /// The highest version the responder supports.
    public var maxVersion: UInt16
    /// The version selected for the connection (0x0100, or 0 when refused).
    public var negotiatedVersion: UInt16
    /// The send credits the responder asks for (its send credit target).
    public var creditsRequested: UInt16
    /// The first send credits the responder grants the initiator.
    public var creditsGranted: UInt16
    /// An NTSTATUS: success, or why the connection is refused.
    public var status: UInt32
    /// The most bytes one RDMA read or write of the upper layer may move.
    public var maxReadWriteSize: UInt32
    /// The most bytes the responder will put in one message.
    public var preferredSendSize: UInt32
    /// The most bytes the responder can receive in one message.
    public var maxReceiveSize: UInt32
    /// The largest upper-layer message the responder reassembles.
    public var maxFragmentedSize: UInt32

    /// A response that grants `creditsGranted`, asks for `creditsRequested` and announces the
    /// given sizes; the versions default to 0x0100 and the status to success.
    public init(minVersion: UInt16 = smbDirectProtocolVersion, maxVersion: UInt16 = smbDirectProtocolVersion,
                negotiatedVersion: UInt16 = smbDirectProtocolVersion, creditsRequested: UInt16, creditsGranted: UInt16,
                status: UInt32 = SMBDirectNegotiateResponse.statusSuccess, maxReadWriteSize: UInt32,
                preferredSendSize: UInt32, maxReceiveSize: UInt32, maxFragmentedSize: UInt32) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.negotiatedVersion = negotiatedVersion
        self.creditsRequested = creditsRequested
        self.creditsGranted = creditsGranted
        self.status = status
        self.maxReadWriteSize = maxReadWriteSize
        self.preferredSendSize = preferredSendSize
        self.maxReceiveSize = maxReceiveSize
        self.maxFragmentedSize = maxFragmentedSize
    }

    /// Decodes and validates a Negotiate Response as the initiator must: at least 32
    /// bytes, a success Status, version 0x0100 selected from the responder's range,
    /// credits requested and granted, a receive size of at least 128 bytes and a
    /// fragmented size of at least 128 KiB. Reserved is ignored.
    ///
    /// Whether PreferredSendSize fits this side's receive size is checked by the
    /// negotiation, which knows that size (``SMBDirectLimits/init(configuration:response:)``).
    public init(decoding bytes: UnsafeRawBufferPointer) throws(SMBDirectDecodingError) {
        guard bytes.count >= Self.size else { throw .truncated(needed: Self.size, available: bytes.count) }
        minVersion = bytes.loadLittleEndian(UInt16.self, at: 0)
        maxVersion = bytes.loadLittleEndian(UInt16.self, at: 2)
        negotiatedVersion = bytes.loadLittleEndian(UInt16.self, at: 4)
        creditsRequested = bytes.loadLittleEndian(UInt16.self, at: 8)
        creditsGranted = bytes.loadLittleEndian(UInt16.self, at: 10)
        status = bytes.loadLittleEndian(UInt32.self, at: 12)
        maxReadWriteSize = bytes.loadLittleEndian(UInt32.self, at: 16)
        preferredSendSize = bytes.loadLittleEndian(UInt32.self, at: 20)
        maxReceiveSize = bytes.loadLittleEndian(UInt32.self, at: 24)
        maxFragmentedSize = bytes.loadLittleEndian(UInt32.self, at: 28)
        guard status == Self.statusSuccess else { throw .negotiationRefused(status: status) }
        guard negotiatedVersion == smbDirectProtocolVersion, minVersion <= negotiatedVersion, negotiatedVersion <= maxVersion else {
            throw .invalidNegotiatedVersion(negotiatedVersion)
        }
        guard creditsRequested > 0 else { throw .invalidField(.creditsRequested, value: 0) }
        guard creditsGranted > 0 else { throw .invalidField(.creditsGranted, value: 0) }
        guard maxReadWriteSize > 0 else { throw .invalidField(.maxReadWriteSize, value: 0) }
        try SMBDirectNegotiateRequest.validateSizes(preferredSendSize: preferredSendSize, maxReceiveSize: maxReceiveSize,
                                                    maxFragmentedSize: maxFragmentedSize)
    }

    /// Writes the 32 bytes of the message at the start of `buffer` and returns 32.
    @discardableResult
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= Self.size, "a Negotiate Response needs \(Self.size) bytes")
        buffer.storeLittleEndian(minVersion, at: 0)
        buffer.storeLittleEndian(maxVersion, at: 2)
        buffer.storeLittleEndian(negotiatedVersion, at: 4)
        buffer.storeLittleEndian(UInt16(0), at: 6)
        buffer.storeLittleEndian(creditsRequested, at: 8)
        buffer.storeLittleEndian(creditsGranted, at: 10)
        buffer.storeLittleEndian(status, at: 12)
        buffer.storeLittleEndian(maxReadWriteSize, at: 16)
        buffer.storeLittleEndian(preferredSendSize, at: 20)
        buffer.storeLittleEndian(maxReceiveSize, at: 24)
        buffer.storeLittleEndian(maxFragmentedSize, at: 28)
        return Self.size
    }
}
