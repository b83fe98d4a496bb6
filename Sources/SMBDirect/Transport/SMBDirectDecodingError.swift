/// Why bytes received from a peer are not a valid MS-SMBD message.
///
/// The decoders check every rule of MS-SMBD sections 2.2 and 3 that a receiver can
/// check from the bytes (and the negotiated limits) alone, and never read past their
/// input. A receiver that meets one of these errors terminates the connection, as the
/// specification requires.
public enum SMBDirectDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A field the errors name.
    public enum Field: String, Sendable {
        /// The CreditsRequested field.
        case creditsRequested = "CreditsRequested"
        /// The CreditsGranted field.
        case creditsGranted = "CreditsGranted"
        /// The PreferredSendSize field.
        case preferredSendSize = "PreferredSendSize"
        /// The MaxReceiveSize field.
        case maxReceiveSize = "MaxReceiveSize"
        /// The MaxFragmentedSize field.
        case maxFragmentedSize = "MaxFragmentedSize"
        /// The MaxReadWriteSize field.
        case maxReadWriteSize = "MaxReadWriteSize"
        /// The DataOffset field.
        case dataOffset = "DataOffset"
        /// The DataLength field.
        case dataLength = "DataLength"
        /// The RemainingDataLength field.
        case remainingDataLength = "RemainingDataLength"
        /// The Length field of a buffer descriptor.
        case bufferDescriptorLength = "Length"
    }

    /// The message is shorter than its fixed part.
    case truncated(needed: Int, available: Int)
    /// The sender's version range does not include 0x0100 (or is empty).
    case unsupportedVersion(min: UInt16, max: UInt16)
    /// A Negotiate Response selected a version other than 0x0100, or one outside its own range.
    case invalidNegotiatedVersion(UInt16)
    /// A Negotiate Response with a failure Status (an NTSTATUS).
    case negotiationRefused(status: UInt32)
    /// A field with a value the specification forbids (zero credits, a size below its minimum).
    case invalidField(Field, value: UInt32)
    /// DataOffset is not 8-byte aligned, or points into the header.
    case misalignedDataOffset(UInt32)
    /// DataOffset is set although DataLength is 0, or the payload runs past the message.
    case payloadOutOfBounds(offset: UInt32, length: UInt32, messageLength: Int)
    /// The message is longer than the negotiated receive size.
    case messageTooLong(length: Int, limit: Int)
    /// DataLength plus RemainingDataLength exceeds the negotiated fragmented size.
    case fragmentedMessageTooLong(length: Int, limit: Int)
    /// A fragment that announces more data but carries none.
    case emptyFragment(remaining: UInt32)
    /// A continuation fragment whose lengths disagree with the fragments before it.
    case inconsistentFragment(expectedRemaining: Int, dataLength: UInt32, remaining: UInt32)
    /// A buffer descriptor list whose length is not a positive multiple of 16.
    case invalidDescriptorListLength(Int)
    /// Buffer descriptors that describe more than the negotiated MaxReadWriteSize.
    case transferTooLong(length: Int, limit: Int)
    /// A buffer descriptor whose bytes would run past the top of the address space.
    case descriptorWraps(offset: UInt64, length: UInt32)

    /// What is wrong with the message, in a sentence for logs and error messages.
    public var description: String {
        switch self {
        case .truncated(let needed, let available): "the message has \(available) bytes, its fixed part needs \(needed)"
        case .unsupportedVersion(let min, let max):
            "the versions 0x\(String(min, radix: 16))...0x\(String(max, radix: 16)) do not include 0x0100"
        case .invalidNegotiatedVersion(let version): "the negotiated version 0x\(String(version, radix: 16)) is not 0x0100"
        case .negotiationRefused(let status): "the peer refused the negotiation (status 0x\(String(status, radix: 16)))"
        case .invalidField(let field, let value): "\(field.rawValue) \(value) is not allowed"
        case .misalignedDataOffset(let offset): "DataOffset \(offset) is not an 8-byte aligned offset past the header"
        case .payloadOutOfBounds(let offset, let length, let messageLength):
            "a payload of \(length) bytes at \(offset) does not fit a message of \(messageLength) bytes"
        case .messageTooLong(let length, let limit): "a message of \(length) bytes exceeds the receive size \(limit)"
        case .fragmentedMessageTooLong(let length, let limit):
            "a fragmented message of \(length) bytes exceeds the fragmented size \(limit)"
        case .emptyFragment(let remaining): "a fragment announces \(remaining) more bytes but carries none"
        case .inconsistentFragment(let expected, let dataLength, let remaining):
            "a fragment of \(dataLength) bytes leaving \(remaining) does not continue one that left \(expected)"
        case .invalidDescriptorListLength(let length): "\(length) bytes are not a list of 16-byte buffer descriptors"
        case .transferTooLong(let length, let limit): "buffer descriptors of \(length) bytes exceed MaxReadWriteSize \(limit)"
        case .descriptorWraps(let offset, let length):
            "a buffer descriptor of \(length) bytes at 0x\(String(offset, radix: 16)) runs past the top of the address space"
        }
    }
}
