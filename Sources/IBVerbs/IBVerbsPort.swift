#if RDMA
import CVerbs
import Verbs

/// The state of a device port and its addressing, as `ibv_query_port` and the GID
/// table report them.
public struct IBVerbsPort: Hashable, Sendable {
    /// The logical state of a port (`enum ibv_port_state`).
    public enum State: UInt32, Sendable, CustomStringConvertible {
        /// `IBV_PORT_NOP`, `IBV_PORT_DOWN`, `IBV_PORT_INIT`, `IBV_PORT_ARMED`, `IBV_PORT_ACTIVE`
        /// and `IBV_PORT_ACTIVE_DEFER`: no state change, link down, link up but not configured,
        /// configured but not yet active, ready to carry traffic, and active with traffic
        /// deferred.
        case noChange = 0, down = 1, initialized = 2, armed = 3, active = 4, activeDeferred = 5

        /// The state's libibverbs name without its `IBV_PORT_` prefix, such as `ACTIVE`.
        public var description: String {
            switch self {
            case .noChange: "NOP"
            case .down: "DOWN"
            case .initialized: "INIT"
            case .armed: "ARMED"
            case .active: "ACTIVE"
            case .activeDeferred: "ACTIVE_DEFER"
            }
        }
    }

    /// The port number (from 1).
    public var number: UInt8
    /// The logical state.
    public var state: State
    /// The MTU in use, in bytes (`active_mtu`).
    public var activeMTU: Int
    /// The largest MTU the port supports, in bytes (`max_mtu`).
    public var maxMTU: Int
    /// The largest message, in bytes (`max_msg_sz`).
    public var maxMessageSize: Int
    /// The number of entries in the port's GID table (`gid_tbl_len`).
    public var gidTableLength: Int
    /// Whether the port runs over Ethernet (RoCE) rather than InfiniBand (`link_layer`).
    public var isEthernet: Bool
    /// The port's local identifier, which the subnet manager assigns on InfiniBand;
    /// 0 on RoCE (`lid`).
    public var lid: UInt16
    /// ``activeMTU`` as a path MTU; `nil` while the port reports none.
    public var activePathMTU: PathMTU?

    init(number: UInt8, _ attributes: ibv_port_attr) {
        self.number = number
        state = State(rawValue: attributes.state.rawValue) ?? .down
        activeMTU = Self.bytes(attributes.active_mtu)
        maxMTU = Self.bytes(attributes.max_mtu)
        maxMessageSize = Int(attributes.max_msg_sz)
        gidTableLength = Int(attributes.gid_tbl_len)
        isEthernet = attributes.link_layer == UInt8(IBV_LINK_LAYER_ETHERNET)
        lid = attributes.lid
        activePathMTU = PathMTU(code: attributes.active_mtu.rawValue)
    }

    /// `IBV_MTU_256` … `IBV_MTU_4096` are 1 … 5.
    private static func bytes(_ mtu: ibv_mtu) -> Int { mtu.rawValue == 0 ? 0 : 128 << Int(mtu.rawValue) }
}

/// One valid entry of a port's GID table (`struct ibv_gid_entry`).
public struct IBVerbsGID: Hashable, Sendable, CustomStringConvertible {
    /// How the GID is carried (`enum ibv_gid_type`).
    public enum Kind: UInt32, Sendable {
        /// `IBV_GID_TYPE_IB`, `IBV_GID_TYPE_ROCE_V1` and `IBV_GID_TYPE_ROCE_V2`: an InfiniBand
        /// GID, a RoCE v1 GID (Ethernet frames), and a RoCE v2 GID (UDP/IP packets).
        case infiniBand = 0, roceV1 = 1, roceV2 = 2
    }

    /// The index in the port's table (`sgid_index` in an address vector).
    public var index: Int
    /// The port.
    public var port: UInt8
    /// The 16 bytes of the GID.
    public var bytes: [UInt8]
    /// How the GID is carried; `nil` for a type this library does not know.
    public var kind: Kind?

    /// The entry at `index` of the GID table of `port`; `bytes` holds the 16 bytes of the GID.
    public init(index: Int, port: UInt8, bytes: [UInt8], kind: Kind?) {
        precondition(bytes.count == 16, "a GID has 16 bytes")
        self.index = index
        self.port = port
        self.bytes = bytes
        self.kind = kind
    }

    /// The IPv4 address when the GID is IPv4-mapped (`::ffff:a.b.c.d`), as RoCE v2
    /// GIDs of an IPv4 interface are.
    public var ipv4Address: String? {
        guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        return bytes[12...].map(String.init).joined(separator: ".")
    }

    /// The sysfs spelling: eight groups of four hex digits.
    public var description: String {
        stride(from: 0, to: 16, by: 2).map { i in
            let group = String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16)
            return String(repeating: "0", count: 4 - group.count) + group
        }.joined(separator: ":")
    }
}
#endif
