import IterExtract
import RDMASGE

// NEGOTIATE and SESSION_SETUP: the dialect, the 3.1.1 preauthentication integrity hash,
// NTLMv2 authentication and the session's signing key (MS-SMB2 3.2.4.2, 3.2.5.2, 3.2.5.3).
extension SMB2Client {
    /// Negotiates the dialect (3.0, 3.0.2 or 3.1.1, the highest the server speaks). With
    /// 3.1.1 the request carries a preauthentication integrity context (SHA-512, a
    /// random salt) and a signing context offering AES-CMAC, and the connection's
    /// preauthentication integrity hash starts over the request and the response.
    ///
    /// - Throws: ``SMB2Error/unsupportedDialect(_:)`` for a dialect not offered;
    ///   ``SMB2Error/unexpectedResponse(_:)`` for a 3.1.1 response without exactly one
    ///   SHA-512 preauthentication integrity context, or choosing a signing algorithm
    ///   not offered. The client is then as it was: no dialect, no preauthentication hash.
    public func negotiate() throws(SMB2Error) {
        let request = SMB2NegotiateRequest(
            clientGUID: NTLMSSP.randomBytes(16), securityMode: securityMode,
            contexts: [.preauthIntegrity(hashAlgorithms: [SMB2NegotiateContext.sha512], salt: NTLMSSP.randomBytes(32)),
                       .signing(algorithms: [SMB2SigningAlgorithm.aesCMAC.rawValue])])
        // The request goes into the hash as it is sent (see `seal`); a failed exchange leaves none.
        preauth = SMB2PreauthIntegrity()
        let response: [UInt8]
        let body: SMB2NegotiateResponse
        do throws(SMB2Error) {
            response = try exchange(.negotiate) { request.encode(into: &$0) }
            body = try SMB2NegotiateResponse(decoding: response)
            guard SMB2NegotiateRequest.dialects.contains(body.dialect) else { throw .unsupportedDialect(body.dialect) }
            if body.dialect == SMB3KeyDerivation.dialect311 { try Self.checkContexts(body.contexts) }
        } catch {
            preauth = nil
            throw error
        }
        dialect = body.dialect
        serverRequiresSigning = body.securityMode & SMB2NegotiateRequest.signingRequired != 0
        if dialect == SMB3KeyDerivation.dialect311 {
            preauth?.add(response)
        } else {
            preauth = nil
        }
        let transport = connection.limits?.maxReadWriteSize ?? 0
        maxWriteSize = max(1, min(Int(body.maxWriteSize), transport, Int(UInt16.max) * Self.creditSize))
        maxReadSize = max(1, min(Int(body.maxReadSize), transport, Int(UInt16.max) * Self.creditSize))
    }

    /// Checks the contexts of a 3.1.1 NEGOTIATE response: exactly one preauthentication
    /// integrity context, choosing SHA-512, and at most one signing context, choosing
    /// one algorithm that was offered (AES-CMAC, which 3.x signs with when the server sends
    /// no signing context too).
    private static func checkContexts(_ contexts: [SMB2NegotiateContext]) throws(SMB2Error) {
        var preauthContexts = 0
        var signingContexts = 0
        for context in contexts {
            switch context {
            case .preauthIntegrity(let hashAlgorithms, _):
                preauthContexts += 1
                guard hashAlgorithms == [SMB2NegotiateContext.sha512] else {
                    throw .unexpectedResponse("preauthentication integrity hash algorithms \(hashAlgorithms), not SHA-512")
                }
            case .signing(let algorithms):
                signingContexts += 1
                guard algorithms == [SMB2SigningAlgorithm.aesCMAC.rawValue] else {
                    throw .unexpectedResponse("signing algorithms \(algorithms), not the AES-CMAC offered")
                }
            case .other:
                break
            }
        }
        guard preauthContexts == 1, signingContexts <= 1 else {
            throw .unexpectedResponse("\(preauthContexts) preauthentication integrity and \(signingContexts) signing contexts")
        }
    }

    /// Sets up an anonymous session: NTLMSSP NEGOTIATE, the server's CHALLENGE, then
    /// an AUTHENTICATE with empty credentials. The server makes it a null or guest
    /// session, which has no key and cannot sign.
    ///
    /// - Throws: ``SMB2Error/signingUnavailable(_:)`` when this client requires
    ///   signing (``requiresSigning``); the connection is closed then.
    public func setUpAnonymousSession() throws(SMB2Error) {
        try setUpSession(credentials: nil)
    }

    /// Sets up a session for the user of `credentials`: NTLMSSP NEGOTIATE, the server's
    /// CHALLENGE, then an NTLMv2 AUTHENTICATE (MS-NLMP 3.1.5.1.2) with a MIC. When the
    /// client or the server requires signing, the session's signing key is derived
    /// from the NTLM session key (with 3.1.1, over the preauthentication integrity
    /// hash of the whole exchange), the server's signature of its final response is
    /// checked, and every later message is signed.
    ///
    /// - Throws: ``SMB2Error/status(_:command:)`` with `STATUS_LOGON_FAILURE` for a wrong
    ///   user name or password; ``SMB2Error/badSignature(command:messageID:)`` when the
    ///   final response's signature does not verify (or it is not signed and signing
    ///   is required), and ``SMB2Error/signingUnavailable(_:)`` when signing is
    ///   required and the server made the session a guest's: the connection is closed then.
    public func setUpSession(_ credentials: SMB2Credentials) throws(SMB2Error) {
        try setUpSession(credentials: Optional(credentials))
    }

    private var securityMode: UInt16 {
        SMB2NegotiateRequest.signingEnabled | (requiresSigning ? SMB2NegotiateRequest.signingRequired : 0)
    }

    private func setUpSession(credentials: SMB2Credentials?) throws(SMB2Error) {
        sessionPreauth = preauth
        defer { sessionPreauth = nil }
        let mode = UInt8(securityMode)
        let negotiateMessage = NTLMSSP.negotiate()
        let first = try exchange(.sessionSetup, accepting: .moreProcessingRequired) {
            SMB2SessionSetupRequest(securityBlob: negotiateMessage, securityMode: mode).encode(into: &$0)
        }
        sessionPreauth?.add(first)
        let challengeBlob = try SMB2SessionSetupResponse(decoding: first).securityBlob
        guard NTLMSSP.messageType(in: challengeBlob[...]) == .challenge else {
            throw .unexpectedResponse("SESSION_SETUP did not return an NTLM challenge")
        }
        sessionID = try SMB2Header(decoding: first).sessionID
        var authenticateMessage = NTLMSSP.anonymousAuthenticate()
        var sessionKey: [UInt8]?
        if let credentials {
            let challenge = try NTLMChallenge(decoding: challengeBlob[...])
            (authenticateMessage, sessionKey) = try NTLMSSP.authenticate(
                credentials: credentials, negotiate: negotiateMessage, challenge: challenge)
        }
        let last = try exchange(.sessionSetup) {
            SMB2SessionSetupRequest(securityBlob: authenticateMessage, securityMode: mode).encode(into: &$0)
        }
        sessionFlags = try SMB2SessionSetupResponse(decoding: last).sessionFlags
        do throws(SMB2Error) {
            try startSigning(sessionKey: sessionKey, finalResponse: last)
        } catch {
            connection.disconnect()
            throw error
        }
    }

    /// After the final SESSION_SETUP response: derives the signing key from `sessionKey`,
    /// checks the response's signature, and signs from now on when either side requires
    /// it. A guest or null session has no key: that is an error only when signing is required.
    private func startSigning(sessionKey: [UInt8]?, finalResponse: [UInt8]) throws(SMB2Error) {
        let required = requiresSigning || serverRequiresSigning
        let keyless = sessionFlags & (SMB2SessionSetupResponse.guestFlag | SMB2SessionSetupResponse.nullFlag) != 0
        guard let sessionKey, !keyless else {
            guard !required else {
                throw .signingUnavailable("the server made the session a \(sessionKey == nil ? "null" : "guest") session, "
                                          + "which has no key to sign with")
            }
            return
        }
        let key = SMB3KeyDerivation.signingKey(sessionKey: sessionKey, dialect: dialect,
                                               preauthIntegrityHash: sessionPreauth?.value ?? [])
        // AES-CMAC: the only algorithm offered, and 3.0's and 3.0.2's.
        let sessionSigner = SMB2Signer(key: key, algorithm: .aesCMAC)
        let header = try SMB2Header(decoding: finalResponse)
        if header.isSigned || required {
            guard header.isSigned, sessionSigner.verify(finalResponse) else {
                throw .badSignature(command: .sessionSetup, messageID: header.messageID)
            }
        }
        guard required else { return }
        signer = sessionSigner
        limitTransfersToSignedMessages()
    }

    /// A signing session sends every WRITE and READ inline: each carries at most what
    /// one SMB Direct message holds (a WRITE's request, a READ's response), in whole pages.
    private func limitTransfersToSignedMessages() {
        let sendable = (connection.limits?.maxFragmentedSendSize ?? 0) - SMB2WriteRequest.dataOffset
        let receivable = connection.configuration.maxFragmentedSize - SMB2ReadResponse.dataOffset
        maxWriteSize = max(1, min(maxWriteSize, sendable / pageSize * pageSize))
        maxReadSize = max(1, min(maxReadSize, receivable / pageSize * pageSize))
    }
}
