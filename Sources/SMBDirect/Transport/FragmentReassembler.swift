/// Joins the fragments of upper-layer messages (MS-SMBD 2.2.3: DataLength and
/// RemainingDataLength) into whole messages, within the negotiated fragmented size.
///
/// Each finished message is handed out whole and the buffer starts again empty, so
/// that between messages the reassembler holds no memory.
public struct FragmentReassembler: Sendable {
    /// The largest message accepted.
    public let maxMessageSize: Int
    private var buffer: [UInt8] = []
    /// The bytes still expected for the message being reassembled, or nil between messages.
    public private(set) var expectedRemaining: Int?

    /// A reassembler that accepts messages of up to `maxMessageSize` bytes.
    public init(maxMessageSize: Int) {
        precondition(maxMessageSize > 0, "messages have at least one byte")
        self.maxMessageSize = maxMessageSize
    }

    /// The bytes the reassembler holds: the buffer of the message being reassembled.
    public var reservedBytes: Int { buffer.capacity }

    /// Whether a message is partly reassembled.
    public var isReassembling: Bool { expectedRemaining != nil }

    /// Adds a fragment's payload and returns the whole message when it was the last.
    ///
    /// - Throws: ``SMBDirectDecodingError/inconsistentFragment(expectedRemaining:dataLength:remaining:)``
    ///   when the lengths do not continue the fragment before, and
    ///   ``SMBDirectDecodingError/fragmentedMessageTooLong(length:limit:)`` beyond the limit.
    public mutating func append(_ payload: UnsafeRawBufferPointer, remaining: UInt32) throws(SMBDirectDecodingError) -> [UInt8]? {
        let length = payload.count
        if let expected = expectedRemaining {
            guard length + Int(remaining) == expected else {
                throw .inconsistentFragment(expectedRemaining: expected, dataLength: UInt32(length), remaining: remaining)
            }
        } else {
            let total = length + Int(remaining)
            guard total <= maxMessageSize else { throw .fragmentedMessageTooLong(length: total, limit: maxMessageSize) }
            if remaining == 0 { return Array(payload) }
            buffer.reserveCapacity(total)
        }
        buffer.append(contentsOf: payload)
        guard remaining == 0 else {
            expectedRemaining = Int(remaining)
            return nil
        }
        expectedRemaining = nil
        defer { buffer = [] }
        return buffer
    }
}
