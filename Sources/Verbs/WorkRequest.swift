/// The operation of a send-queue work request, with the values of `enum ibv_wr_opcode`.
public enum SendOpcode: UInt32, Sendable, CustomStringConvertible {
    /// `IBV_WR_RDMA_WRITE`: write local SGEs into the peer's memory.
    case rdmaWrite = 0
    /// `IBV_WR_RDMA_WRITE_WITH_IMM`: write, then consume a receive at the peer carrying the immediate data.
    case rdmaWriteWithImmediate = 1
    /// `IBV_WR_SEND`: deliver into the peer's next posted receive.
    case send = 2
    /// `IBV_WR_SEND_WITH_IMM`.
    case sendWithImmediate = 3
    /// `IBV_WR_RDMA_READ`: read the peer's memory into local SGEs.
    case rdmaRead = 4

    /// Whether the request names remote memory (RDMA WRITE and READ).
    public var isRemoteAccess: Bool { self == .rdmaWrite || self == .rdmaWriteWithImmediate || self == .rdmaRead }

    /// Whether the request consumes a receive at the peer.
    public var consumesReceive: Bool { self == .send || self == .sendWithImmediate || self == .rdmaWriteWithImmediate }

    /// The opcode of the requester's completion.
    public var completionOpcode: WorkCompletionOpcode {
        switch self {
        case .rdmaWrite, .rdmaWriteWithImmediate: .rdmaWrite
        case .send, .sendWithImmediate: .send
        case .rdmaRead: .rdmaRead
        }
    }

    /// The opcode's libibverbs name without its `IBV_WR_` prefix, such as `RDMA_READ`.
    public var description: String {
        switch self {
        case .rdmaWrite: "RDMA_WRITE"
        case .rdmaWriteWithImmediate: "RDMA_WRITE_WITH_IMM"
        case .send: "SEND"
        case .sendWithImmediate: "SEND_WITH_IMM"
        case .rdmaRead: "RDMA_READ"
        }
    }
}

/// Flags of a send-queue work request, with the values of `enum ibv_send_flags`.
public struct SendFlags: OptionSet, Hashable, Sendable {
    /// The bits, as `send_flags` of `struct ibv_send_wr` carries them.
    public var rawValue: UInt32
    /// The flags whose bits are set in `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Wait for earlier RDMA READs before starting: `IBV_SEND_FENCE`.
    public static let fence = SendFlags(rawValue: 1 << 0)
    /// Report a completion even on success: `IBV_SEND_SIGNALED`.
    public static let signaled = SendFlags(rawValue: 1 << 1)
    /// Ask the peer to raise a solicited event: `IBV_SEND_SOLICITED`.
    public static let solicited = SendFlags(rawValue: 1 << 2)
    /// Copy the data into the request at post time; lkeys are not checked: `IBV_SEND_INLINE`.
    public static let inline = SendFlags(rawValue: 1 << 3)
}

/// A send-queue work request: the userspace form of `struct ibv_send_wr` (one
/// request; a plan posts a chain of them in order).
///
/// The SGEs are borrowed: they must stay valid until the post returns. The device
/// copies the descriptors, not the data (unless ``SendFlags/inline``), so the memory
/// they name must stay valid until the request completes.
public struct SendWorkRequest {
    /// The identifier the completion carries (`wr_id`).
    public var id: UInt64
    /// The operation.
    public var opcode: SendOpcode
    /// The local memory: gathered for SEND and RDMA WRITE, scattered into for RDMA READ.
    public var sges: UnsafeBufferPointer<SGE>
    /// Flags.
    public var flags: SendFlags
    /// Immediate data, for the `…WithImmediate` opcodes (`imm_data`).
    public var immediateData: UInt32
    /// The peer's address, for RDMA WRITE and READ (`wr.rdma.remote_addr`).
    public var remoteAddress: UInt64
    /// The peer region's rkey, for RDMA WRITE and READ (`wr.rdma.rkey`).
    public var rkey: UInt32

    /// A request `id` for `opcode` over `sges`, signalled by default; `remoteAddress` and
    /// `rkey` name the peer's memory for RDMA WRITE and READ, `immediateData` goes with the
    /// `…WithImmediate` opcodes.
    public init(id: UInt64, opcode: SendOpcode, sges: UnsafeBufferPointer<SGE>, flags: SendFlags = .signaled,
                immediateData: UInt32 = 0, remoteAddress: UInt64 = 0, rkey: UInt32 = 0) {
        self.id = id
        self.opcode = opcode
        self.sges = sges
        self.flags = flags
        self.immediateData = immediateData
        self.remoteAddress = remoteAddress
        self.rkey = rkey
    }

    /// The number of bytes the SGEs describe.
    public var byteCount: Int { sges.reduce(0) { $0 + Int($1.length) } }
}

/// A receive-queue work request: the userspace form of `struct ibv_recv_wr`.
public struct ReceiveWorkRequest {
    /// The identifier the completion carries (`wr_id`).
    public var id: UInt64
    /// Where arriving data is scattered, in order. Borrowed until the post returns.
    public var sges: UnsafeBufferPointer<SGE>

    /// A request `id` that scatters the next arriving message into `sges`.
    public init(id: UInt64, sges: UnsafeBufferPointer<SGE>) {
        self.id = id
        self.sges = sges
    }
}
