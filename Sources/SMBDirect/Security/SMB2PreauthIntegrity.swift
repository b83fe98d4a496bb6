import Crypto

/// The SMB 3.1.1 preauthentication integrity hash (MS-SMB2 3.2.5.2, 3.2.5.3.1): a chain
/// of SHA-512 over the NEGOTIATE request and response (the connection's hash), then,
/// from a copy of it, over each SESSION_SETUP request and every SESSION_SETUP response
/// but the last (the session's hash), which is the context from which the session's
/// keys are derived. Any message of the exchange changed in flight changes the keys,
/// so the final, signed SESSION_SETUP response does not verify.
struct SMB2PreauthIntegrity {
    /// The hash so far: 64 zero bytes before the first message.
    private(set) var value = [UInt8](repeating: 0, count: SMB3KeyDerivation.preauthIntegrityHashByteCount)

    /// Folds `message` (a whole SMB2 message, header included) into the hash:
    /// H = SHA-512(H ‖ message).
    mutating func add(_ message: [UInt8]) {
        var hash = SHA512()
        hash.update(data: value)
        hash.update(data: message)
        value = Array(hash.finalize())
    }
}
