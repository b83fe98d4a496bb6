/// Memory a peer may access by RDMA: MS-SMBD 2.2.3.1 Buffer Descriptor V1 (16 bytes),
/// carried in the channel information of SMB2 READ and WRITE requests
/// (`SMB2_CHANNEL_RDMA_V1`).
public struct BufferDescriptorV1: Hashable, Sendable, CustomStringConvertible {
    /// The encoded size.
    public static let size = 16

    /// The address of the first byte in the owner's registration (the RDMA remote address).
    public var offset: UInt64
    /// The key the peer's RDMA operation carries (the rkey).
    public var token: UInt32
    /// The number of bytes.
    public var length: UInt32

    /// A descriptor of `length` bytes at `offset` in the registration whose rkey is `token`.
    public init(offset: UInt64, token: UInt32, length: UInt32) {
        self.offset = offset
        self.token = token
        self.length = length
    }

    /// Decodes the descriptor in the first 16 bytes of `bytes`.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(SMBDirectDecodingError) {
        guard bytes.count >= Self.size else { throw .truncated(needed: Self.size, available: bytes.count) }
        offset = bytes.loadLittleEndian(UInt64.self, at: 0)
        token = bytes.loadLittleEndian(UInt32.self, at: 8)
        length = bytes.loadLittleEndian(UInt32.self, at: 12)
    }

    /// Decodes a list of descriptors that fills `bytes` exactly, appending to
    /// `descriptors`, and returns the bytes they describe. Each must describe at least
    /// one byte that does not run past the top of the address space, and the total must
    /// stay within `maxTotalLength` (the negotiated MaxReadWriteSize). On error nothing
    /// is appended.
    public static func decodeList(
        _ bytes: UnsafeRawBufferPointer, into descriptors: inout [BufferDescriptorV1], maxTotalLength: Int
    ) throws(SMBDirectDecodingError) -> Int {
        guard bytes.count > 0, bytes.count % size == 0 else { throw .invalidDescriptorListLength(bytes.count) }
        let start = descriptors.count
        var total = 0
        for index in 0..<bytes.count / size {
            let descriptor = try BufferDescriptorV1(decoding: UnsafeRawBufferPointer(rebasing: bytes[index * size..<(index + 1) * size]))
            total += Int(descriptor.length)
            let wraps = descriptor.offset.addingReportingOverflow(UInt64(descriptor.length)).overflow
            guard descriptor.length > 0, !wraps, total <= maxTotalLength else {
                descriptors.removeSubrange(start...)
                throw descriptor.length == 0 ? .invalidField(.bufferDescriptorLength, value: 0)
                    : wraps ? .descriptorWraps(offset: descriptor.offset, length: descriptor.length)
                    : .transferTooLong(length: total, limit: maxTotalLength)
            }
            descriptors.append(descriptor)
        }
        return total
    }

    /// Writes the 16 bytes of the descriptor at the start of `buffer` and returns 16.
    @discardableResult
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= Self.size, "a buffer descriptor needs \(Self.size) bytes")
        buffer.storeLittleEndian(offset, at: 0)
        buffer.storeLittleEndian(token, at: 8)
        buffer.storeLittleEndian(length, at: 12)
        return Self.size
    }

    /// The offset, token and length, as `descriptor(0x7f001000, token 0x12, 4096 bytes)`.
    public var description: String {
        "descriptor(0x\(String(offset, radix: 16)), token 0x\(String(token, radix: 16)), \(length) bytes)"
    }
}
