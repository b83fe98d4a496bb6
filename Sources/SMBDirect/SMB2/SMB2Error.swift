import ScatterList

/// Why an SMB2 exchange failed.
public enum SMB2Error: Error, Equatable, Sendable, CustomStringConvertible {
    /// The SMB Direct transport failed (the connection has ended).
    case transport(SMBDirectError)
    /// The server answered a command with an error status.
    case status(NTStatus, command: SMB2Command)
    /// A message that is not valid SMB2 (too short, a field out of bounds).
    case malformed(String)
    /// A valid message that is not the answer expected (another command or message id).
    case unexpectedResponse(String)
    /// The server chose no dialect this client speaks.
    case unsupportedDialect(UInt16)
    /// The server wrote fewer bytes than the request carried.
    case shortWrite(requested: Int, written: Int)
    /// An argument no request can carry (a name longer than 32,767 UTF-16 units, a
    /// write whose range ends past `UInt64.max`, more buffer descriptors than a WRITE
    /// holds); nothing was sent.
    case invalidArgument(String)
    /// A response that should be signed is not, or its signature is not the one its
    /// bytes and the session's key give: it was changed in flight or forged. The
    /// session ends; nothing in the response was used.
    case badSignature(command: SMB2Command, messageID: UInt64)
    /// Signing is required (by the client or the server) and the session cannot sign:
    /// it is anonymous or a guest's (no key), or the server chose no algorithm this
    /// client implements. The session ends.
    case signingUnavailable(String)
    /// The data to be signed could not be described as a scatter table (a pin limit);
    /// nothing was sent.
    case extraction(ScatterListError)

    /// What went wrong, in a sentence for logs and error messages.
    public var description: String {
        switch self {
        case .transport(let error): "SMB Direct: \(error)"
        case .status(let status, let command): "\(command) failed with status \(status)"
        case .malformed(let reason): "malformed SMB2 message: \(reason)"
        case .unexpectedResponse(let reason): "unexpected SMB2 response: \(reason)"
        case .unsupportedDialect(let dialect): "the server chose dialect 0x\(String(dialect, radix: 16))"
        case .shortWrite(let requested, let written): "the server wrote \(written) of \(requested) bytes"
        case .invalidArgument(let reason): "invalid SMB2 request: \(reason)"
        case .badSignature(let command, let messageID):
            "the \(command) response to message \(messageID) is not signed with the session's key"
        case .signingUnavailable(let reason): "signing is required and unavailable: \(reason)"
        case .extraction(let error): "the data to sign: \(error)"
        }
    }
}
