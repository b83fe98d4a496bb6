#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The client's NTLMv2 AUTHENTICATE_MESSAGE (MS-NLMP 3.1.5.1.2).
extension NTLMSSP {
    /// The flags the client's AUTHENTICATE carries: those of ``clientFlags`` the server
    /// accepted, with Unicode (the strings sent are UTF-16LE), target information and the
    /// Version field. Never `NTLMSSP_NEGOTIATE_KEY_EXCH`: the session key is the session base key.
    static func authenticateFlags(challengeFlags: UInt32) -> UInt32 {
        (clientFlags & challengeFlags) | unicodeFlag | targetInfoFlag | versionFlag
    }

    /// The AUTHENTICATE_MESSAGE answering `challenge` for `credentials`, and the session key.
    ///
    /// The NtChallengeResponse is NTLMv2's, over a client blob holding the challenge's target
    /// information with MsvAvFlags marking the MIC present; the time in the blob is the
    /// challenge's MsvAvTimestamp if it has one, else `time`, else now. The LmChallengeResponse
    /// is LMv2's, or 24 zero bytes when the challenge has a timestamp. Without key exchange
    /// the session key is SessionBaseKey, which keys the MIC: HMAC-MD5 over `negotiate`, the
    /// challenge's message and this message with the MIC zeroed. The workstation is empty.
    ///
    /// - Parameters:
    ///   - credentials: the user, domain and password.
    ///   - negotiate: the NEGOTIATE_MESSAGE this client sent, as sent (``negotiate()``).
    ///   - challenge: the server's CHALLENGE_MESSAGE.
    ///   - clientChallenge: 8 bytes, random unless a test fixes them.
    ///   - time: the FILETIME to use when the challenge has no MsvAvTimestamp (nil: now).
    /// - Returns: the message to send and the 16-byte session key.
    /// - Throws: ``SMB2Error/invalidArgument(_:)`` when `clientChallenge` is not 8 bytes or a
    ///   name is longer than a field can hold.
    package static func authenticate(credentials: SMB2Credentials, negotiate: [UInt8], challenge: NTLMChallenge,
                                     clientChallenge: [UInt8] = randomBytes(8),
                                     time: UInt64? = nil) throws(SMB2Error) -> (message: [UInt8], sessionKey: [UInt8]) {
        guard clientChallenge.count == NTLMv2.challengeByteCount else {
            throw .invalidArgument("a client challenge of \(clientChallenge.count) bytes (NTLMv2 takes 8)")
        }
        let responseKey = NTLMv2.responseKeyNT(ntHash: NTLMv2.ntHash(password: credentials.password),
                                               user: credentials.user, domain: credentials.domain)
        let targetInfo = challenge.targetInfo.settingFlags(NTLMTargetInfo.micPresentFlag)
        let blob = NTLMv2.clientBlob(time: challenge.timestamp ?? time ?? currentFileTime(),
                                     clientChallenge: clientChallenge, targetInfo: targetInfo.encoded())
        let proof = NTLMv2.ntProofStr(responseKeyNT: responseKey, serverChallenge: challenge.serverChallenge, clientBlob: blob)
        let lmResponse = NTLMv2.lmChallengeResponse(responseKeyNT: responseKey, serverChallenge: challenge.serverChallenge,
                                                    clientChallenge: clientChallenge,
                                                    timestampPresent: challenge.timestamp != nil)
        let sessionKey = NTLMv2.sessionBaseKey(responseKeyNT: responseKey, ntProofStr: proof)
        var message = try NTLMAuthenticateMessage(
            lmChallengeResponse: lmResponse, ntChallengeResponse: proof + blob,
            domain: credentials.domain, user: credentials.user,
            flags: authenticateFlags(challengeFlags: challenge.flags)
        ).encoded()
        let mic = messageIntegrityCode(sessionKey: sessionKey, negotiate: negotiate, challenge: challenge.message,
                                       authenticate: message)
        message.replaceSubrange(NTLMAuthenticateMessage.micOffset..<NTLMAuthenticateMessage.payloadOffset, with: mic)
        return (message, sessionKey)
    }

    /// The MIC (MS-NLMP 3.1.5.1.2): HMAC-MD5 keyed with the exported session key over the
    /// three messages, the AUTHENTICATE's MIC field read as zero.
    static func messageIntegrityCode(sessionKey: [UInt8], negotiate: [UInt8], challenge: [UInt8],
                                     authenticate: [UInt8]) -> [UInt8] {
        var zeroed = authenticate
        zeroed.replaceSubrange(NTLMAuthenticateMessage.micOffset..<NTLMAuthenticateMessage.payloadOffset,
                               with: repeatElement(0, count: NTLMAuthenticateMessage.micByteCount))
        return NTLMv2.hmacMD5(key: sessionKey, negotiate + challenge + zeroed)
    }

    /// `count` bytes from the system's cryptographically secure generator.
    package static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// Now as a FILETIME: 100-nanosecond intervals since 1601-01-01 UTC.
    static func currentFileTime() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        // 11,644,473,600 seconds separate 1601-01-01 from the Unix epoch.
        return UInt64(max(0, Int64(now.tv_sec) + 11_644_473_600)) * 10_000_000 + UInt64(max(0, Int64(now.tv_nsec)) / 100)
    }
}
