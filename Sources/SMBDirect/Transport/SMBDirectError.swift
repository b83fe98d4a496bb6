import RDMASGE

/// Why an SMB Direct connection operation failed.
///
/// Every error but ``notConnected``, ``emptyMessage``, ``descriptorsExceedBuffer(length:bufferSize:)``,
/// ``messageTooLarge(length:limit:)`` and an
/// extraction error before the first fragment went out ends the connection: by the
/// time it is thrown all posted work has been flushed and every buffer released.
public enum SMBDirectError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A verbs call was refused.
    case verbs(VerbsError)
    /// A work request completed with an error status.
    case completion(WorkCompletionStatus, operation: WorkCompletionOpcode)
    /// The peer sent a message that is not valid MS-SMBD.
    case malformed(SMBDirectDecodingError)
    /// The peer broke a rule of the protocol (a message without a credit, a second negotiation).
    case protocolViolation(String)
    /// A completion of a kind the connection never asked for: a receive consumed by
    /// an RDMA WRITE with immediate data or longer than the receive buffer, or a
    /// completion for work that is not in flight.
    case unexpectedCompletion(WorkCompletionOpcode, byteCount: Int)
    /// An upper-layer message without a byte (MS-SMBD carries at least one).
    case emptyMessage
    /// Buffer descriptors that describe more bytes than the local buffer of an RDMA
    /// transfer holds; nothing was transferred.
    case descriptorsExceedBuffer(length: Int, bufferSize: Int)
    /// Extraction of the caller's iterator to SGEs failed; nothing of it was sent.
    case extraction(RDMAError)
    /// An iterator stopped describing memory before its end (an XARRAY hole).
    case payloadNotExtractable(remaining: Int)
    /// An upper-layer message larger than the peer reassembles.
    case messageTooLarge(length: Int, limit: Int)
    /// The peer did not answer a keepalive within the keepalive interval.
    case keepaliveTimeout
    /// The connection was ended at once by ``SMBDirectConnection/disconnect()``: the peer
    /// went away, or the upper layer gave up on it.
    case disconnected
    /// The connection manager reported an event that ends the link the connection runs
    /// over (the peer disconnected, the device went away), seen through
    /// ``SMBDirectConnection/watch(_:)``.
    case connectionEnded(ConnectionEvent)
    /// A blocking operation waited longer than the configured timeout.
    case timedOut(String)
    /// The connection is not connected (not yet negotiated, closed, or failed earlier).
    case notConnected

    /// What went wrong, in a sentence for logs and error messages.
    public var description: String {
        switch self {
        case .verbs(let error): "\(error)"
        case .completion(let status, let operation): "a \(operation) completed with \(status)"
        case .malformed(let error): "malformed message: \(error)"
        case .protocolViolation(let reason): "protocol violation: \(reason)"
        case .unexpectedCompletion(let opcode, let byteCount): "an unexpected \(opcode) completion of \(byteCount) bytes"
        case .emptyMessage: "an upper-layer message has at least one byte"
        case .descriptorsExceedBuffer(let length, let bufferSize):
            "buffer descriptors of \(length) bytes exceed the local buffer of \(bufferSize)"
        case .extraction(let error): "\(error)"
        case .payloadNotExtractable(let remaining): "the payload has no memory for its last \(remaining) bytes"
        case .messageTooLarge(let length, let limit): "a message of \(length) bytes exceeds the peer's limit of \(limit)"
        case .keepaliveTimeout: "the peer did not answer a keepalive"
        case .disconnected: "the connection was disconnected"
        case .connectionEnded(let event): "the connection manager ended the link: \(event)"
        case .timedOut(let what): "timed out waiting for \(what)"
        case .notConnected: "the connection is not connected"
        }
    }
}
