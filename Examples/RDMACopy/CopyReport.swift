import TestKit

/// What a client's session did, for its final line.
public struct CopyReport: Hashable, Sendable, CustomStringConvertible {
    /// The session's operation.
    public var operation: CopyOperation
    /// The bytes moved.
    public var bytes: Int
    /// How long the RDMA WRITEs or READs took, first post to last completion.
    public var transferTime: Duration
    /// How long the whole session took, connecting and verifying included.
    public var sessionTime: Duration
    /// The SHA-256 both sides agreed on, in hex.
    public var sha256: String

    /// The transfer rate in MB/s of 2^20 bytes (as `ib_write_bw` reports it).
    public var megabytesPerSecond: Double {
        let seconds = transferTime / .seconds(1)
        return seconds > 0 ? Double(bytes) / seconds / Double(1 << 20) : 0
    }

    /// `pushed N bytes in T s, X MB/s, sha256 OK (…)`.
    public var description: String {
        let verb = operation == .push ? "pushed" : "fetched"
        return "\(verb) \(bytes) bytes in \(fixed(transferTime / .seconds(1), 3)) s, \(fixed(megabytesPerSecond, 2)) MB/s, "
            + "sha256 OK (\(sha256.prefix(16))…; session \(fixed(sessionTime / .seconds(1), 3)) s)"
    }
}

/// `digest` in lowercase hex.
func hex<Bytes: Sequence<UInt8>>(_ digest: Bytes) -> String {
    digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}
