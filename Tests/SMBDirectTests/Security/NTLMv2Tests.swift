import SMBDirect
import Testing

/// MS-NLMP 4.2.4, "NTLMv2 Authentication": user "User", domain "Domain", password
/// "Password", server challenge 0123456789abcdef, client challenge aaaaaaaaaaaaaaaa, time 0,
/// and target information MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", MsvAvEOL.
@Suite("NTLMv2 (MS-NLMP 4.2.4)")
struct NTLMv2Tests {
    static let serverChallenge = hexBytes("0123456789abcdef")
    static let clientChallenge = hexBytes("aaaaaaaaaaaaaaaa")
    static let targetInfo = NTLMTargetInfo(pairs: [
        .init(id: NTLMTargetInfo.nbDomainName, value: utf16LittleEndian("Domain")),
        .init(id: NTLMTargetInfo.nbComputerName, value: utf16LittleEndian("Server")),
    ])
    static let responseKeyNT = hexBytes("0c868a403bfd7a93a3001ef22ef02e3f")
    /// 4.2.4.1.3, `temp`.
    static let clientBlob = hexBytes("""
        0101 000000000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000
        02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 00000000
        00000000
        """)
    static let ntProofStr = hexBytes("68cd0ab851e51c96aabc927bebef6a1c")

    @Test("4.2.4.1.1 NTOWFv1: the NT hash of \"Password\"")
    func ntHash() {
        #expect(NTLMv2.ntHash(password: "Password") == hexBytes("a4f49c406510bdcab6824ee7c30fd852"))
    }

    @Test("4.2.4.1.1 NTOWFv2: ResponseKeyNT of User, Domain")
    func responseKey() {
        let key = NTLMv2.responseKeyNT(ntHash: NTLMv2.ntHash(password: "Password"), user: "User", domain: "Domain")
        #expect(key == Self.responseKeyNT)
        // The user name is uppercased, the domain is not.
        #expect(NTLMv2.responseKeyNT(ntHash: NTLMv2.ntHash(password: "Password"), user: "USER", domain: "Domain") == key)
        #expect(NTLMv2.responseKeyNT(ntHash: NTLMv2.ntHash(password: "Password"), user: "User", domain: "DOMAIN") != key)
    }

    @Test("The target information encodes as 4.2.4.1.3's temp holds it")
    func targetInfoEncoding() throws {
        let encoded = Self.targetInfo.encoded()
        #expect(encoded == Array(Self.clientBlob[28..<(Self.clientBlob.count - 4)]))
        #expect(try NTLMTargetInfo(decoding: encoded[...]) == Self.targetInfo)
    }

    @Test("4.2.4.1.3 temp, the client blob")
    func clientBlob() {
        let blob = NTLMv2.clientBlob(time: 0, clientChallenge: Self.clientChallenge, targetInfo: Self.targetInfo.encoded())
        #expect(blob == Self.clientBlob)
    }

    @Test("4.2.4.2.1 LMv2 response")
    func lmResponse() {
        let response = NTLMv2.lmChallengeResponse(responseKeyNT: Self.responseKeyNT, serverChallenge: Self.serverChallenge,
                                                  clientChallenge: Self.clientChallenge)
        #expect(response == hexBytes("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"))
        let withTimestamp = NTLMv2.lmChallengeResponse(responseKeyNT: Self.responseKeyNT, serverChallenge: Self.serverChallenge,
                                                       clientChallenge: Self.clientChallenge, timestampPresent: true)
        #expect(withTimestamp == [UInt8](repeating: 0, count: 24))
    }

    @Test("4.2.4.2.2 NTLMv2 response: NTProofStr, then temp")
    func ntResponse() {
        let proof = NTLMv2.ntProofStr(responseKeyNT: Self.responseKeyNT, serverChallenge: Self.serverChallenge,
                                      clientBlob: Self.clientBlob)
        #expect(proof == Self.ntProofStr)
        let response = NTLMv2.ntChallengeResponse(responseKeyNT: Self.responseKeyNT, serverChallenge: Self.serverChallenge,
                                                  clientBlob: Self.clientBlob)
        #expect(response == Self.ntProofStr + Self.clientBlob)
    }

    @Test("4.2.4.1.2 SessionBaseKey")
    func sessionBaseKey() {
        #expect(NTLMv2.sessionBaseKey(responseKeyNT: Self.responseKeyNT, ntProofStr: Self.ntProofStr)
                == hexBytes("8de40ccadbc14a82f15cb0ad0de95ca3"))
    }

    @Test("The client's AUTHENTICATE for 4.2.4's user carries the NTProofStr of the blob it sends")
    func authenticateUsesTheComputations() throws {
        // The client adds MsvAvFlags (MIC present) to the target information, so its proof
        // differs from 4.2.4's; recomputing it from the blob sent must match.
        let challenge = NTLMSSP.challenge(serverChallenge: Self.serverChallenge, timestamp: 0)
        let credentials = SMB2Credentials(user: "User", domain: "Domain", password: "Password")
        let (message, sessionKey) = try NTLMSSP.authenticate(credentials: credentials, negotiate: NTLMSSP.negotiate(),
                                                             challenge: challenge, clientChallenge: Self.clientChallenge)
        let decoded = try NTLMAuthenticateMessage(decoding: message[...])
        let blob = Array(decoded.ntChallengeResponse.dropFirst(16))
        let proof = NTLMv2.ntProofStr(responseKeyNT: Self.responseKeyNT, serverChallenge: Self.serverChallenge, clientBlob: blob)
        #expect(Array(decoded.ntChallengeResponse.prefix(16)) == proof)
        #expect(sessionKey == NTLMv2.sessionBaseKey(responseKeyNT: Self.responseKeyNT, ntProofStr: proof))
        #expect(decoded.user == "User" && decoded.domain == "Domain" && decoded.workstation.isEmpty)
        // The challenge has MsvAvTimestamp: the LM response is zeros and the blob's time is the server's.
        #expect(decoded.lmChallengeResponse == [UInt8](repeating: 0, count: 24))
        let info = try NTLMTargetInfo(decoding: blob[28...])
        #expect(info.flags == NTLMTargetInfo.micPresentFlag)
        #expect(info.timestamp == 0)
    }
}
