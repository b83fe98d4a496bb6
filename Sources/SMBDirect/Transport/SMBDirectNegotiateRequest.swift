/// The first message of a connection, sent by the initiator: MS-SMBD 2.2.1 Negotiate
/// Request (20 bytes).
public struct SMBDirectNegotiateRequest: Hashable, Sendable {
    /// The encoded size.
    public static let size = 20
    /// The smallest MaxReceiveSize a peer may announce (the receipt rules of MS-SMBD section 3: 128).
    public static let minReceiveSize: UInt32 = 128
    /// The smallest MaxFragmentedSize a peer may announce (131072 bytes).
    public static let minFragmentedSize: UInt32 = 131_072

    /// The lowest version the sender supports.
    public var minVersion: UInt16
    /// The highest version the sender supports.
    public var maxVersion: UInt16
    /// The send credits the sender asks for (its send credit target).
    public var creditsRequested: UInt16
    /// The most bytes the sender would like to put in one message.
    public var preferredSendSize: UInt32
    /// The most bytes the sender can receive in one message.
    public var maxReceiveSize: UInt32
    /// The largest upper-layer message the sender reassembles from fragments.
    public var maxFragmentedSize: UInt32

    /// A request that offers `creditsRequested` and the given sizes; both versions default
    /// to 0x0100, the only version MS-SMBD defines.
    public init(minVersion: UInt16 = smbDirectProtocolVersion, maxVersion: UInt16 = smbDirectProtocolVersion,
                creditsRequested: UInt16, preferredSendSize: UInt32, maxReceiveSize: UInt32, maxFragmentedSize: UInt32) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.creditsRequested = creditsRequested
        self.preferredSendSize = preferredSendSize
        self.maxReceiveSize = maxReceiveSize
        self.maxFragmentedSize = maxFragmentedSize
    }

    /// Decodes and validates a Negotiate Request as its receiver must: at least 20
    /// bytes (more are ignored), a version range that includes 0x0100, credits
    /// requested, a receive size of at least 128 bytes and a fragmented size of at
    /// least 128 KiB. Reserved is ignored.
    ///
    /// - Throws: ``SMBDirectDecodingError/unsupportedVersion(min:max:)``, to which the
    ///   receiver answers with a Negotiate Response carrying `STATUS_NOT_SUPPORTED`;
    ///   any other error ends the connection without a response.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(SMBDirectDecodingError) {
        guard bytes.count >= Self.size else { throw .truncated(needed: Self.size, available: bytes.count) }
        minVersion = bytes.loadLittleEndian(UInt16.self, at: 0)
        maxVersion = bytes.loadLittleEndian(UInt16.self, at: 2)
        creditsRequested = bytes.loadLittleEndian(UInt16.self, at: 6)
        preferredSendSize = bytes.loadLittleEndian(UInt32.self, at: 8)
        maxReceiveSize = bytes.loadLittleEndian(UInt32.self, at: 12)
        maxFragmentedSize = bytes.loadLittleEndian(UInt32.self, at: 16)
        guard minVersion <= smbDirectProtocolVersion, smbDirectProtocolVersion <= maxVersion else {
            throw .unsupportedVersion(min: minVersion, max: maxVersion)
        }
        guard creditsRequested > 0 else { throw .invalidField(.creditsRequested, value: 0) }
        try Self.validateSizes(preferredSendSize: preferredSendSize, maxReceiveSize: maxReceiveSize,
                               maxFragmentedSize: maxFragmentedSize)
    }

    /// The size checks both negotiate messages make (MS-SMBD 3.1.5.6, 3.1.5.8): a
    /// preferred send size, a receive size of at least 128 bytes and a fragmented size
    /// of at least 128 KiB.
    static func validateSizes(preferredSendSize: UInt32, maxReceiveSize: UInt32, maxFragmentedSize: UInt32)
        throws(SMBDirectDecodingError)
    {
        guard preferredSendSize > 0 else { throw .invalidField(.preferredSendSize, value: 0) }
        guard maxReceiveSize >= minReceiveSize else { throw .invalidField(.maxReceiveSize, value: maxReceiveSize) }
        guard maxFragmentedSize >= minFragmentedSize else {
            throw .invalidField(.maxFragmentedSize, value: maxFragmentedSize)
        }
    }

    /// Writes the 20 bytes of the message at the start of `buffer` and returns 20.
    @discardableResult
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= Self.size, "a Negotiate Request needs \(Self.size) bytes")
        buffer.storeLittleEndian(minVersion, at: 0)
        buffer.storeLittleEndian(maxVersion, at: 2)
        buffer.storeLittleEndian(UInt16(0), at: 4)
        buffer.storeLittleEndian(creditsRequested, at: 6)
        buffer.storeLittleEndian(preferredSendSize, at: 8)
        buffer.storeLittleEndian(maxReceiveSize, at: 12)
        buffer.storeLittleEndian(maxFragmentedSize, at: 16)
        return Self.size
    }
}
