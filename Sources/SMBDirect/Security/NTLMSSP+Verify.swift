/// The in-process server's side of NTLMv2 (MS-NLMP 3.2.5): its CHALLENGE, and the check of
/// the client's AUTHENTICATE against a password it looks up.
extension NTLMSSP {
    /// A CHALLENGE_MESSAGE with the Version field, `targetName` as TargetName, and target
    /// information holding MsvAvNbDomainName and MsvAvNbComputerName (both `targetName`),
    /// MsvAvTimestamp (`timestamp`) and MsvAvEOL. The flags offer what ``negotiate()``
    /// asks for, target information and the Version field, but not key exchange.
    ///
    /// - Returns: the challenge, whose ``NTLMChallenge/message`` is the bytes to send.
    /// - Precondition: `serverChallenge` is 8 bytes and `targetName` at most 32,767 UTF-16 units.
    package static func challenge(serverChallenge: [UInt8], timestamp: UInt64,
                                  targetName: String = "ITEREXTRACT") -> NTLMChallenge {
        precondition(serverChallenge.count == NTLMv2.challengeByteCount, "a server challenge is 8 bytes")
        let name = utf16LittleEndian(targetName)
        precondition(name.count <= Int(UInt16.max), "a target name of \(name.count) bytes")
        let targetInfo = NTLMTargetInfo(pairs: [
            .init(id: NTLMTargetInfo.nbDomainName, value: name),
            .init(id: NTLMTargetInfo.nbComputerName, value: name),
            .init(id: NTLMTargetInfo.timestampID, value: withUnsafeBytes(of: timestamp.littleEndian) { Array($0) }),
        ])
        let targetInfoBytes = targetInfo.encoded()
        let flags = clientFlags | targetInfoFlag | versionFlag
        var writer = SMB2MessageWriter(capacity: NTLMChallenge.versionedByteCount + name.count + targetInfoBytes.count)
        writer.append(signature)
        writer.append(MessageType.challenge.rawValue)
        appendField(length: name.count, offset: NTLMChallenge.versionedByteCount, to: &writer)
        writer.append(flags)
        writer.append(serverChallenge)
        writer.appendZeros(8)
        appendField(length: targetInfoBytes.count, offset: NTLMChallenge.versionedByteCount + name.count, to: &writer)
        writer.append(version)
        writer.append(name)
        writer.append(targetInfoBytes)
        return NTLMChallenge(message: writer.bytes, flags: flags, serverChallenge: serverChallenge, targetInfo: targetInfo)
    }

    /// Checks the client's AUTHENTICATE_MESSAGE in `blob` (raw or wrapped in SPNEGO) against
    /// `challenge` and returns the session key.
    ///
    /// The NTLMv2 response's NTProofStr is recomputed from the client blob it carries and the
    /// password `password` gives for the user and domain; when the blob's target information
    /// has MsvAvFlags' MIC bit, the MIC must be the HMAC-MD5 of `negotiate`, the challenge and
    /// the message with the MIC zeroed. Comparisons take the same time wherever the bytes
    /// differ. The session key is SessionBaseKey: the challenge offered no key exchange, and
    /// a client that asks for it anyway is refused. The blob's time is not checked against
    /// the clock (the in-process server trusts its own challenge's freshness).
    ///
    /// - Parameters:
    ///   - blob: the security blob of the client's second SESSION_SETUP request.
    ///   - negotiate: the client's NEGOTIATE_MESSAGE as received.
    ///   - challenge: the CHALLENGE this server sent.
    ///   - password: the password of a user in a domain, nil for an unknown user.
    /// - Returns: the 16-byte session key.
    /// - Throws: ``SMB2Error/malformed(_:)`` for a message that does not decode, and
    ///   ``SMB2Error/status(_:command:)`` with ``NTStatus/logonFailure`` for an unknown user,
    ///   a wrong password, a bad MIC, a response that is not NTLMv2, or key exchange.
    package static func verifyAuthenticate(_ blob: ArraySlice<UInt8>, negotiate: [UInt8], challenge: NTLMChallenge,
                                           password: (_ user: String, _ domain: String) -> String?) throws(SMB2Error) -> [UInt8] {
        let logonFailure = SMB2Error.status(.logonFailure, command: .sessionSetup)
        let message = try NTLMAuthenticateMessage(decoding: blob)
        let response = message.ntChallengeResponse
        // 24 bytes is an NTLMv1 response, well-formed but refused.
        guard response.count != 24 else { throw logonFailure }
        let blobStart = NTLMv2.proofByteCount
        guard response.count >= blobStart + NTLMv2.clientBlobHeaderByteCount + 4 + 4 else {
            throw .malformed("an NTLMv2 response of \(response.count) bytes")
        }
        guard response[blobStart] == 1, response[blobStart + 1] == 1 else {
            throw .malformed("an NTLMv2 client blob of type \(response[blobStart]).\(response[blobStart + 1])")
        }
        let clientBlob = Array(response[blobStart...])
        let clientTargetInfo = try NTLMTargetInfo(decoding: clientBlob[NTLMv2.clientBlobHeaderByteCount...])
        guard message.flags & keyExchangeFlag == 0, let password = password(message.user, message.domain) else {
            throw logonFailure
        }
        let responseKey = NTLMv2.responseKeyNT(ntHash: NTLMv2.ntHash(password: password),
                                               user: message.user, domain: message.domain)
        let proof = NTLMv2.ntProofStr(responseKeyNT: responseKey, serverChallenge: challenge.serverChallenge,
                                      clientBlob: clientBlob)
        guard constantTimeEqual(proof, response[..<blobStart]) else { throw logonFailure }
        let sessionKey = NTLMv2.sessionBaseKey(responseKeyNT: responseKey, ntProofStr: proof)
        if (clientTargetInfo.flags ?? 0) & NTLMTargetInfo.micPresentFlag != 0 {
            guard let mic = message.mic else { throw logonFailure }
            let expected = messageIntegrityCode(sessionKey: sessionKey, negotiate: negotiate,
                                                challenge: challenge.message, authenticate: message.received)
            guard constantTimeEqual(expected, mic) else { throw logonFailure }
        }
        return sessionKey
    }
}
