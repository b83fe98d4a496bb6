/// One scatter/gather element of an RDMA work request, binary-compatible with
/// libibverbs' `struct ibv_sge` (u64 addr, u32 length, u32 lkey; 16 bytes), so that an
/// array of them can be handed to `ibv_post_send` without conversion.
@frozen
public struct SGE: Hashable, Sendable, CustomStringConvertible {
    /// The address of the first byte, inside the memory region of ``lkey``.
    public var address: UInt64
    /// The number of bytes.
    public var length: UInt32
    /// The local key of the memory region that covers the bytes.
    public var lkey: UInt32

    /// An element of `length` bytes at `address`, in the memory region whose local key is `lkey`.
    @inlinable
    public init(address: UInt64, length: UInt32, lkey: UInt32) {
        self.address = address
        self.length = length
        self.lkey = lkey
    }

    /// The address, length and local key, as `sge(0x7f001000, 4096, lkey 0x12)`.
    public var description: String {
        "sge(0x\(String(address, radix: 16)), \(length), lkey 0x\(String(lkey, radix: 16)))"
    }
}
