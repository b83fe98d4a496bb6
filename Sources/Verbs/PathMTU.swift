/// The largest payload one packet carries on a path, as `enum ibv_mtu` names the sizes.
///
/// Its raw value, and its `Codable` form, is the size in bytes, so an endpoint a peer
/// sends says `1024`, not the code `IBV_MTU_1024`; decoding any other number throws
/// `DecodingError.dataCorrupted`. Sizes order by bytes, so two ports agree on
/// `min(local, remote)`.
public enum PathMTU: Int, Hashable, Sendable, CaseIterable, Comparable, Codable, CustomStringConvertible {
    /// `IBV_MTU_256`.
    case bytes256 = 256
    /// `IBV_MTU_512`.
    case bytes512 = 512
    /// `IBV_MTU_1024`.
    case bytes1024 = 1024
    /// `IBV_MTU_2048`.
    case bytes2048 = 2048
    /// `IBV_MTU_4096`.
    case bytes4096 = 4096

    /// The `enum ibv_mtu` value: 1 for 256 bytes … 5 for 4096 bytes.
    package var code: UInt32 { UInt32(rawValue.trailingZeroBitCount - 7) }

    /// The size of the `enum ibv_mtu` value `code`; `nil` for 0 (none) or an unknown code.
    package init?(code: UInt32) {
        guard (1...5).contains(code) else { return nil }
        self.init(rawValue: 128 << Int(code))
    }

    /// Whether `lhs` is the smaller size.
    public static func < (lhs: PathMTU, rhs: PathMTU) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The size in bytes, such as `1024`.
    public var description: String { String(rawValue) }
}
