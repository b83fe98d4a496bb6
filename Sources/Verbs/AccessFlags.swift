/// What a memory region allows, with the bit values of libibverbs' `enum ibv_access_flags`.
///
/// Local reads are always allowed; everything else must be asked for when the region
/// is registered. As with `ibv_reg_mr`, remote write and remote atomic access need
/// local write access too.
public struct AccessFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The bits, as `ibv_reg_mr` takes them.
    public var rawValue: UInt32

    /// The flags whose bits are set in `rawValue`.
    @inlinable
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The local device may write the memory (receives, RDMA READ targets): `IBV_ACCESS_LOCAL_WRITE`.
    public static let localWrite = AccessFlags(rawValue: 1 << 0)
    /// A remote peer may RDMA WRITE into the memory: `IBV_ACCESS_REMOTE_WRITE`.
    public static let remoteWrite = AccessFlags(rawValue: 1 << 1)
    /// A remote peer may RDMA READ the memory: `IBV_ACCESS_REMOTE_READ`.
    public static let remoteRead = AccessFlags(rawValue: 1 << 2)
    /// A remote peer may run atomics on the memory: `IBV_ACCESS_REMOTE_ATOMIC`.
    public static let remoteAtomic = AccessFlags(rawValue: 1 << 3)

    /// Local write plus remote read and write: what a buffer exposed to a peer usually needs.
    public static let all: AccessFlags = [.localWrite, .remoteWrite, .remoteRead]

    /// The names of the flags, joined by `|` as in `LOCAL_WRITE|REMOTE_READ`; `LOCAL_READ`
    /// when none is set, since local reads are always allowed.
    public var description: String {
        let names: [(AccessFlags, String)] = [
            (.localWrite, "LOCAL_WRITE"), (.remoteWrite, "REMOTE_WRITE"),
            (.remoteRead, "REMOTE_READ"), (.remoteAtomic, "REMOTE_ATOMIC"),
        ]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "LOCAL_READ" : set.joined(separator: "|")
    }
}
