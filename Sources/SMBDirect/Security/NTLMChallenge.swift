/// A CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) as the client needs it: the server's flags,
/// challenge and target information, and the message's bytes for the MIC.
package struct NTLMChallenge: Sendable {
    /// The size of the fixed fields, up to the Version field.
    static let fixedByteCount = 48
    /// The size of the fixed fields with the Version field (`NTLMSSP_NEGOTIATE_VERSION`).
    static let versionedByteCount = 56

    /// The CHALLENGE_MESSAGE as received, from its signature to its end: the bytes the MIC
    /// covers. The end is the end of the blob when the blob is the NTLM message itself (its
    /// signature at the start), so padding after the last field is kept; when the message is
    /// wrapped in SPNEGO it is the furthest end of the fixed fields, TargetName and
    /// TargetInfo, since the DER after the token is not part of it.
    package let message: [UInt8]
    /// NegotiateFlags, the flags the server chose.
    package let flags: UInt32
    /// The server's 8-byte challenge.
    package let serverChallenge: [UInt8]
    /// The decoded TargetInfo field (empty when the field is).
    package let targetInfo: NTLMTargetInfo

    /// MsvAvTimestamp of the target information, the server's FILETIME, if it has one.
    package var timestamp: UInt64? { targetInfo.timestamp }

    /// A challenge whose parts are known already (the in-process server's own).
    init(message: [UInt8], flags: UInt32, serverChallenge: [UInt8], targetInfo: NTLMTargetInfo) {
        self.message = message
        self.flags = flags
        self.serverChallenge = serverChallenge
        self.targetInfo = targetInfo
    }

    /// Decodes the CHALLENGE_MESSAGE in `blob`, raw or wrapped in SPNEGO (ksmbd wraps it when
    /// the client's NEGOTIATE was wrapped): the NTLM signature is found wherever it starts,
    /// and every offset is taken from there and checked against the end of `blob`.
    ///
    /// - Throws: ``SMB2Error/malformed(_:)`` when `blob` holds no NTLM message, the message is
    ///   not a CHALLENGE, or a field or the target information is out of bounds.
    package init(decoding blob: ArraySlice<UInt8>) throws(SMB2Error) {
        guard let start = NTLMSSP.messageStart(in: blob) else {
            throw .malformed("no NTLM message in a \(blob.count)-byte security blob")
        }
        let reader = SMB2MessageReader(Array(blob[start...]))
        let type = try reader.integer(UInt32.self, at: 8)
        guard type == NTLMSSP.MessageType.challenge.rawValue else {
            throw .malformed("NTLM message type \(type) where a CHALLENGE (2) was expected")
        }
        let flags = try reader.integer(UInt32.self, at: 20)
        let serverChallenge = try reader.slice(at: 24, count: NTLMv2.challengeByteCount)
        let targetName = try NTLMSSP.field(at: 12, in: reader)
        let targetInfoBytes = try NTLMSSP.field(at: 40, in: reader)
        let headerEnd = flags & NTLMSSP.versionFlag != 0 ? Self.versionedByteCount : Self.fixedByteCount
        guard reader.bytes.count >= headerEnd else {
            throw .malformed("a \(reader.bytes.count)-byte CHALLENGE, shorter than its \(headerEnd) bytes of fixed fields")
        }
        let end = start == blob.startIndex
            ? reader.bytes.count
            : max(headerEnd, targetName.endIndex, targetInfoBytes.endIndex)
        self.message = Array(reader.bytes[..<end])
        self.flags = flags
        self.serverChallenge = Array(serverChallenge)
        self.targetInfo = try targetInfoBytes.isEmpty ? NTLMTargetInfo() : NTLMTargetInfo(decoding: targetInfoBytes)
    }
}
