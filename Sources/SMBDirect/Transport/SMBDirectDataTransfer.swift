/// The header of every message after negotiation: MS-SMBD 2.2.3 Data Transfer
/// Message (20 bytes, then padding to the payload at an 8-byte aligned DataOffset).
///
/// A message carries upper-layer data, or none at all to grant or request credits or
/// to answer a keepalive. An upper-layer message larger than one send is split into
/// fragments whose RemainingDataLength counts the bytes still to come (0 in the last).
public struct SMBDirectDataTransfer: Hashable, Sendable {
    /// The flags of a Data Transfer message.
    public struct Flags: OptionSet, Hashable, Sendable {
        /// The bits of the Flags field.
        public var rawValue: UInt16
        /// The flags whose bits are set in `rawValue`.
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        /// `SMB_DIRECT_RESPONSE_REQUESTED`: the peer must answer promptly (a keepalive).
        public static let responseRequested = Flags(rawValue: 0x0001)
    }

    /// The fixed header's size.
    public static let headerSize = 20
    /// Where this implementation puts a payload: the first 8-byte aligned offset past the header.
    public static let payloadOffset = 24

    /// The total send credits the sender wants to hold (not an increment).
    public var creditsRequested: UInt16
    /// The send credits granted to the receiver by this message (an increment).
    public var creditsGranted: UInt16
    /// How the message is to be processed.
    public var flags: Flags
    /// The upper-layer bytes still to come after this fragment; 0 in the last one.
    public var remainingDataLength: UInt32
    /// The payload's offset from the start of the message; 0 when there is no payload.
    public var dataOffset: UInt32
    /// The payload's length.
    public var dataLength: UInt32

    /// A header for `dataLength` payload bytes at ``payloadOffset`` (DataOffset 0 when there are none).
    public init(creditsRequested: UInt16, creditsGranted: UInt16, flags: Flags = [],
                remainingDataLength: UInt32 = 0, dataLength: UInt32 = 0) {
        self.creditsRequested = creditsRequested
        self.creditsGranted = creditsGranted
        self.flags = flags
        self.remainingDataLength = remainingDataLength
        self.dataOffset = dataLength == 0 ? 0 : UInt32(Self.payloadOffset)
        self.dataLength = dataLength
    }

    /// Decodes and validates a received message as MS-SMBD 3.1.5.8 requires: at least
    /// 20 bytes and no more than `maxReceiveSize`, CreditsRequested at least 1, and an
    /// 8-byte aligned DataOffset inside the message. Without a payload nothing more is
    /// announced (RemainingDataLength 0) and DataOffset need not be 0, as the receipt
    /// rules ask no more of it. With one, DataOffset is past the header (the payload
    /// cannot overlap it), the payload lies inside the message, and DataLength plus
    /// RemainingDataLength is within `maxFragmentedSize`. Unknown flags and Reserved
    /// are ignored.
    public init(decoding message: UnsafeRawBufferPointer, maxReceiveSize: Int, maxFragmentedSize: Int) throws(SMBDirectDecodingError) {
        guard message.count >= Self.headerSize else { throw .truncated(needed: Self.headerSize, available: message.count) }
        guard message.count <= maxReceiveSize else { throw .messageTooLong(length: message.count, limit: maxReceiveSize) }
        creditsRequested = message.loadLittleEndian(UInt16.self, at: 0)
        creditsGranted = message.loadLittleEndian(UInt16.self, at: 2)
        flags = Flags(rawValue: message.loadLittleEndian(UInt16.self, at: 4))
        remainingDataLength = message.loadLittleEndian(UInt32.self, at: 8)
        dataOffset = message.loadLittleEndian(UInt32.self, at: 12)
        dataLength = message.loadLittleEndian(UInt32.self, at: 16)
        guard creditsRequested > 0 else { throw .invalidField(.creditsRequested, value: 0) }
        guard dataOffset % 8 == 0 else { throw .misalignedDataOffset(dataOffset) }
        guard dataLength > 0 else {
            guard dataOffset <= UInt32(message.count) else {
                throw .payloadOutOfBounds(offset: dataOffset, length: 0, messageLength: message.count)
            }
            guard remainingDataLength == 0 else { throw .emptyFragment(remaining: remainingDataLength) }
            return
        }
        guard dataOffset >= UInt32(Self.headerSize) else { throw .misalignedDataOffset(dataOffset) }
        guard UInt64(dataOffset) + UInt64(dataLength) <= UInt64(message.count) else {
            throw .payloadOutOfBounds(offset: dataOffset, length: dataLength, messageLength: message.count)
        }
        let announced = UInt64(dataLength) + UInt64(remainingDataLength)
        guard announced <= UInt64(maxFragmentedSize) else {
            throw .fragmentedMessageTooLong(length: Int(announced), limit: maxFragmentedSize)
        }
    }

    /// The payload's bytes within the message.
    public var payloadRange: Range<Int> { Int(dataOffset)..<Int(dataOffset) + Int(dataLength) }

    /// The bytes the header occupies when encoded: 20, or DataOffset (24 for the messages
    /// this side builds) with a payload, or when a received message without one put
    /// DataOffset past the header.
    public var encodedSize: Int { max(Self.headerSize, Int(dataOffset)) }

    /// Writes the header, and zeros up to DataOffset, at the start of `buffer`; returns
    /// ``encodedSize``. The payload is the caller's: it follows in the buffer or in
    /// further SGEs of the same send.
    @discardableResult
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(dataOffset % 8 == 0 && (dataLength == 0 || dataOffset >= UInt32(Self.headerSize)),
                     "DataOffset \(dataOffset) is not valid for \(dataLength) payload bytes")
        let size = encodedSize
        precondition(buffer.count >= size, "a Data Transfer header needs \(size) bytes")
        buffer.storeLittleEndian(creditsRequested, at: 0)
        buffer.storeLittleEndian(creditsGranted, at: 2)
        buffer.storeLittleEndian(flags.rawValue, at: 4)
        buffer.storeLittleEndian(UInt16(0), at: 6)
        buffer.storeLittleEndian(remainingDataLength, at: 8)
        buffer.storeLittleEndian(dataOffset, at: 12)
        buffer.storeLittleEndian(dataLength, at: 16)
        for padding in Self.headerSize..<size { buffer[padding] = 0 }
        return size
    }
}
