#if canImport(Glibc)
import Glibc
#endif
import RDMASGE

/// Why an rdma-copy session failed.
public enum RDMACopyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The server refused the request, for the reason its rejection carried.
    case rejected(CopyRejection)
    /// The connection was refused without an rdma-copy reason: nothing listens there (yet).
    case refused(host: String, port: UInt16)
    /// A verbs call failed.
    case verbs(VerbsError)
    /// Describing memory as SGEs failed.
    case extraction(RDMAError)
    /// The peer sent something the protocol does not allow.
    case protocolViolation(String)
    /// A work request completed with `status` while `step` was under way.
    case transferFailed(WorkCompletionStatus, step: String)
    /// The SHA-256 of the bytes that arrived is not the sender's.
    case digestMismatch(expected: String, received: String)
    /// The WRITE WITH IMMEDIATE did not carry the length's low 32 bits.
    case lengthMismatch
    /// A file could not be read or written: the `errno`.
    case file(path: String, errno: Int32)
    /// The peer went quiet while `step` was under way.
    case timedOut(step: String)

    /// What went wrong, in a sentence.
    public var description: String {
        switch self {
        case .rejected(let rejection): "the server rejected the request: \(rejection)"
        case .refused(let host, let port): "connection to \(host) port \(port) refused: is rdma-copy serve running there?"
        case .verbs(let error): "\(error)"
        case .extraction(let error): "\(error)"
        case .protocolViolation(let what): "protocol violation: \(what)"
        case .transferFailed(let status, let step): "\(step) failed: \(status)"
        case .digestMismatch(let expected, let received):
            "sha256 MISMATCH: sent \(expected), the bytes that arrived have \(received)"
        case .lengthMismatch: "the WRITE WITH IMMEDIATE did not carry the length"
        case .file(let path, let code): "\(path): \(String(cString: strerror(code)))"
        case .timedOut(let step): "timed out during \(step)"
        }
    }
}
