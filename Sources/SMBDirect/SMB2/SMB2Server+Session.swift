import IterExtract
import RDMASGE

// NEGOTIATE and SESSION_SETUP on the server's side, and the signatures of the session
// (MS-SMB2 3.3.5.4, 3.3.5.5, 3.3.5.2.4, 3.3.4.1.1).
extension SMB2Server {
    /// Chooses the highest dialect offered; with 3.1.1, the request must carry a
    /// preauthentication integrity context offering SHA-512, and a signing context
    /// offering AES-CMAC is answered with one choosing it.
    func negotiate(_ offer: SMB2NegotiateRequest, body: inout SMB2MessageWriter) -> NTStatus {
        guard let chosen = SMB2NegotiateRequest.dialects.last(where: offer.dialects.contains) else { return .notSupported }
        var contexts: [SMB2NegotiateContext] = []
        if chosen == SMB3KeyDerivation.dialect311 {
            var preauthContexts = 0
            var offersSHA512 = false
            var offersCMAC = false
            for context in offer.contexts {
                switch context {
                case .preauthIntegrity(let algorithms, _):
                    preauthContexts += 1
                    offersSHA512 = algorithms.contains(SMB2NegotiateContext.sha512)
                case .signing(let algorithms):
                    offersCMAC = offersCMAC || algorithms.contains(SMB2SigningAlgorithm.aesCMAC.rawValue)
                case .other:
                    break
                }
            }
            guard preauthContexts == 1, offersSHA512 else { return .invalidParameter }
            contexts.append(.preauthIntegrity(hashAlgorithms: [SMB2NegotiateContext.sha512], salt: NTLMSSP.randomBytes(32)))
            if offersCMAC { contexts.append(.signing(algorithms: [SMB2SigningAlgorithm.aesCMAC.rawValue])) }
        }
        dialect = chosen
        let size = UInt32(connection.configuration.maxReadWriteSize)
        let mode = SMB2NegotiateRequest.signingEnabled | (requiresSigning ? SMB2NegotiateRequest.signingRequired : 0)
        SMB2NegotiateResponse(dialect: chosen, securityMode: mode, serverGUID: Array(repeating: 0x5A, count: 16),
                              maxTransactSize: size, maxReadSize: size, maxWriteSize: size, contexts: contexts)
            .encode(into: &body)
        return .success
    }

    /// The two legs of an NTLM session setup: a NEGOTIATE gets a CHALLENGE; an
    /// AUTHENTICATE is checked (NTLMv2 and its MIC against ``users``, or anonymous when
    /// the server has no users) and, for a user, gives the session its signing key.
    func setUpSession(_ header: SMB2Header, _ message: [UInt8], body: inout SMB2MessageWriter) throws(SMB2Error) -> NTStatus {
        let request = try SMB2SessionSetupRequest(decoding: message)
        guard dialect != 0 else { return .invalidParameter }
        let blob = request.securityBlob[...]
        switch NTLMSSP.messageType(in: blob) {
        case .negotiate:
            sessionID = 0x0000_1000_0000_0001
            isAuthenticated = false
            signer = nil
            signsSession = false
            sessionPreauth = preauth
            sessionPreauth?.add(message)
            let challenge = NTLMSSP.challenge(serverChallenge: NTLMSSP.randomBytes(8), timestamp: NTLMSSP.currentFileTime())
            ntlmExchange = (Array(blob), challenge)
            SMB2SessionSetupResponse(sessionFlags: 0, securityBlob: challenge.message).encode(into: &body)
            return .moreProcessingRequired
        case .authenticate where header.sessionID == sessionID && sessionID != 0:
            guard let exchange = ntlmExchange else { return .logonFailure }
            ntlmExchange = nil
            sessionPreauth?.add(message)
            defer { sessionPreauth = nil }
            if NTLMSSP.isAnonymous(blob) {
                guard users.isEmpty else { return .logonFailure }
                isAuthenticated = true
                SMB2SessionSetupResponse(sessionFlags: SMB2SessionSetupResponse.nullFlag, securityBlob: []).encode(into: &body)
                return .success
            }
            let sessionKey: [UInt8]
            do {
                sessionKey = try NTLMSSP.verifyAuthenticate(blob, negotiate: exchange.negotiate, challenge: exchange.challenge) {
                    user, _ in users[user]
                }
            } catch {
                return .logonFailure
            }
            let key = SMB3KeyDerivation.signingKey(sessionKey: sessionKey, dialect: dialect,
                                                   preauthIntegrityHash: sessionPreauth?.value ?? [])
            signer = SMB2Signer(key: key, algorithm: .aesCMAC)
            signsSession = requiresSigning || request.securityMode & UInt8(SMB2NegotiateRequest.signingRequired) != 0
            isAuthenticated = true
            SMB2SessionSetupResponse(sessionFlags: 0, securityBlob: []).encode(into: &body)
            return .success
        default:
            return .logonFailure
        }
    }

    /// `STATUS_ACCESS_DENIED` for a request of a signing session that is not signed with
    /// its key; `nil` when the request may be handled.
    func checkSignature(of request: [UInt8], _ header: SMB2Header) -> NTStatus? {
        guard signsSession, let signer, header.command != .negotiate, header.command != .sessionSetup,
              header.sessionID == sessionID
        else { return nil }
        return header.isSigned && signer.verify(request) ? nil : .accessDenied
    }

    /// Finishes the response `message` to `request` (with `header`): a NEGOTIATE starts
    /// the connection's preauthentication integrity hash (3.1.1) and a SESSION_SETUP
    /// response that asks for more is added to the session's; the final SESSION_SETUP
    /// response of a user's session, and every response of a signing session, is signed.
    func seal(_ message: inout [UInt8], _ header: SMB2Header, _ request: [UInt8], _ status: NTStatus) {
        switch header.command {
        case .negotiate:
            preauth = nil
            if status == .success, dialect == SMB3KeyDerivation.dialect311 {
                preauth = SMB2PreauthIntegrity()
                preauth?.add(request)
                preauth?.add(message)
            }
            return
        case .sessionSetup where status == .moreProcessingRequired:
            sessionPreauth?.add(message)
            return
        case .sessionSetup where status != .success:
            return
        case .sessionSetup:
            break
        default:
            guard signsSession else { return }
        }
        guard let signer, header.messageID != leavesUnsignedResponseTo else { return }
        signer.sign(&message)
        if header.messageID == corruptsSignatureOf { message[SMB2Signer.signatureRange.lowerBound] ^= 0xFF }
    }
}
