import SMBDirect
import Testing

/// Records an issue unless `body` throws ``SMB2Error/malformed(_:)``.
private func expectMalformed(_ label: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation,
                             _ body: () throws(SMB2Error) -> Void) {
    do {
        try body()
        Issue.record("\(label()): accepted", sourceLocation: sourceLocation)
    } catch {
        guard case .malformed = error else {
            Issue.record("\(label()): \(error), not malformed", sourceLocation: sourceLocation)
            return
        }
    }
}

/// Records an issue unless `body` throws STATUS_LOGON_FAILURE for SESSION_SETUP.
private func expectLogonFailure(_ label: String, sourceLocation: SourceLocation = #_sourceLocation,
                                _ body: () throws(SMB2Error) -> Void) {
    do {
        try body()
        Issue.record("\(label): accepted", sourceLocation: sourceLocation)
    } catch {
        #expect(error == .status(.logonFailure, command: .sessionSetup), "\(label)", sourceLocation: sourceLocation)
    }
}

/// `bytes` with the little-endian 16- or 32-bit integer at `offset` replaced by `value`.
private func setting<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: [UInt8]) -> [UInt8] {
    var copy = bytes
    withUnsafeBytes(of: value.littleEndian) { copy.replaceSubrange(offset..<offset + MemoryLayout<T>.size, with: $0) }
    return copy
}

/// `bytes` with the byte at `offset` inverted.
private func flipping(_ offset: Int, in bytes: [UInt8]) -> [UInt8] {
    var copy = bytes
    copy[offset] ^= 0xff
    return copy
}

/// A CHALLENGE_MESSAGE (no Version field, no target name) whose TargetInfo field holds
/// `targetInfo` as given, well-formed or not.
private func challengeMessage(targetInfo: [UInt8]) -> [UInt8] {
    var bytes = Array("NTLMSSP\0".utf8)
    bytes += [2, 0, 0, 0] + [0, 0, 0, 0, 48, 0, 0, 0] + [0x05, 0x82, 0x88, 0xa0]
    bytes += [1, 2, 3, 4, 5, 6, 7, 8] + [UInt8](repeating: 0, count: 8)
    bytes += [UInt8(targetInfo.count & 0xff), UInt8(targetInfo.count >> 8)]
    bytes += [UInt8(targetInfo.count & 0xff), UInt8(targetInfo.count >> 8), 48, 0, 0, 0]
    return bytes + targetInfo
}

@Suite("NTLMSSP: NTLMv2 client and server")
struct NTLMSSPTests {
    static let credentials = SMB2Credentials(user: "alice", domain: "ITEREXTRACT", password: "correct horse")
    static let negotiate = NTLMSSP.negotiate()

    /// The server's password table: alice in ITEREXTRACT only.
    static func password(user: String, domain: String) -> String? {
        user.uppercased() == "ALICE" && domain == "ITEREXTRACT" ? "correct horse" : nil
    }

    /// A fresh challenge and the client's answer for `credentials`.
    static func exchange(_ credentials: SMB2Credentials = credentials) throws -> (NTLMChallenge, [UInt8], [UInt8]) {
        let challenge = NTLMSSP.challenge(serverChallenge: NTLMSSP.randomBytes(8), timestamp: 133_000_000_000_000_000)
        let (message, key) = try NTLMSSP.authenticate(credentials: credentials, negotiate: negotiate, challenge: challenge)
        return (challenge, message, key)
    }

    @Test("Client and server derive the same 16-byte session key")
    func roundTrip() throws {
        let (challenge, message, clientKey) = try Self.exchange()
        let serverKey = try NTLMSSP.verifyAuthenticate(message[...], negotiate: Self.negotiate, challenge: challenge,
                                                       password: Self.password)
        #expect(serverKey == clientKey)
        #expect(clientKey.count == 16)
        #expect(NTLMSSP.messageType(in: message[...]) == .authenticate)
        #expect(!NTLMSSP.isAnonymous(message[...]))
    }

    @Test("A challenge without MsvAvTimestamp takes the client's time and an LMv2 response")
    func challengeWithoutTimestamp() throws {
        let challenge = try NTLMChallenge(decoding: NTLMSSP.challenge(0x0123_4567_89ab_cdef)[...])
        #expect(challenge.timestamp == nil)
        #expect(challenge.serverChallenge == [0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01])
        let (message, clientKey) = try NTLMSSP.authenticate(credentials: Self.credentials, negotiate: Self.negotiate,
                                                            challenge: challenge, time: 42)
        let decoded = try NTLMAuthenticateMessage(decoding: message[...])
        #expect(decoded.lmChallengeResponse.count == 24 && decoded.lmChallengeResponse != [UInt8](repeating: 0, count: 24))
        #expect(Array(decoded.ntChallengeResponse[24..<32]) == [42, 0, 0, 0, 0, 0, 0, 0])
        let serverKey = try NTLMSSP.verifyAuthenticate(message[...], negotiate: Self.negotiate, challenge: challenge,
                                                       password: Self.password)
        #expect(serverKey == clientKey)
    }

    @Test("The anonymous messages still decode as before")
    func anonymous() throws {
        let authenticate = NTLMSSP.anonymousAuthenticate()
        #expect(NTLMSSP.messageType(in: authenticate[...]) == .authenticate)
        #expect(NTLMSSP.isAnonymous(authenticate[...]))
        let decoded = try NTLMAuthenticateMessage(decoding: authenticate[...])
        #expect(decoded.user.isEmpty && decoded.mic == nil && decoded.lmChallengeResponse == [0])
        #expect(NTLMSSP.messageType(in: Self.negotiate[...]) == .negotiate)
    }

    @Test("A wrong password is a logon failure")
    func wrongPassword() throws {
        let wrong = SMB2Credentials(user: "alice", domain: "ITEREXTRACT", password: "correct horse!")
        let (challenge, message, _) = try Self.exchange(wrong)
        expectLogonFailure("wrong password") { () throws(SMB2Error) in
            _ = try NTLMSSP.verifyAuthenticate(message[...], negotiate: Self.negotiate, challenge: challenge,
                                               password: Self.password)
        }
    }

    @Test("An unknown user is a logon failure")
    func unknownUser() throws {
        let mallory = SMB2Credentials(user: "mallory", domain: "ITEREXTRACT", password: "correct horse")
        let (challenge, message, _) = try Self.exchange(mallory)
        expectLogonFailure("unknown user") { () throws(SMB2Error) in
            _ = try NTLMSSP.verifyAuthenticate(message[...], negotiate: Self.negotiate, challenge: challenge,
                                               password: Self.password)
        }
    }

    @Test("A changed MIC, NTProofStr, blob, user or NEGOTIATE is a logon failure")
    func tampering() throws {
        let (challenge, message, _) = try Self.exchange()
        let decoded = try NTLMAuthenticateMessage(decoding: message[...])
        let ntOffset = Int(message[24]) | Int(message[25]) << 8
        let userOffset = Int(message[40]) | Int(message[41]) << 8
        let cases: [(String, [UInt8], [UInt8])] = [
            ("MIC first byte", flipping(72, in: message), Self.negotiate),
            ("MIC last byte", flipping(87, in: message), Self.negotiate),
            ("NTProofStr", flipping(ntOffset, in: message), Self.negotiate),
            ("client challenge in the blob", flipping(ntOffset + 16 + 16, in: message), Self.negotiate),
            ("user name", flipping(userOffset, in: message), Self.negotiate),
            ("negotiate flags", flipping(61, in: message), Self.negotiate),
            ("NEGOTIATE", message, flipping(12, in: Self.negotiate)),
        ]
        #expect(decoded.mic != nil)
        for (label, tampered, negotiate) in cases {
            expectLogonFailure(label) { () throws(SMB2Error) in
                _ = try NTLMSSP.verifyAuthenticate(tampered[...], negotiate: negotiate, challenge: challenge,
                                                   password: Self.password)
            }
        }
        let other = NTLMSSP.challenge(serverChallenge: NTLMSSP.randomBytes(8), timestamp: 1)
        expectLogonFailure("another challenge") { () throws(SMB2Error) in
            _ = try NTLMSSP.verifyAuthenticate(message[...], negotiate: Self.negotiate, challenge: other,
                                               password: Self.password)
        }
    }

    @Test("A challenge and an AUTHENTICATE wrapped in SPNEGO decode to the NTLM message inside")
    func spnegoWrapped() throws {
        let challenge = NTLMSSP.challenge(serverChallenge: [9, 8, 7, 6, 5, 4, 3, 2], timestamp: 7)
        // A negTokenResp's DER before the token, and a mechListMIC after it.
        let prefix: [UInt8] = [0xa1, 0x81, 0xc0, 0x30, 0x81, 0xbd, 0xa0, 0x03, 0x0a, 0x01, 0x01, 0xa2, 0x81, 0xa0, 0x04, 0x81, 0x9d]
        let suffix: [UInt8] = [0xa3, 0x12, 0x04, 0x10] + [UInt8](repeating: 0x55, count: 16)
        let wrapped = try NTLMChallenge(decoding: (prefix + challenge.message + suffix)[...])
        #expect(wrapped.message == challenge.message)
        #expect(wrapped.serverChallenge == [9, 8, 7, 6, 5, 4, 3, 2])
        #expect(wrapped.timestamp == 7)
        #expect(wrapped.targetInfo == challenge.targetInfo)
        #expect(wrapped.flags == challenge.flags)
        let (message, clientKey) = try NTLMSSP.authenticate(credentials: Self.credentials, negotiate: Self.negotiate,
                                                            challenge: wrapped)
        let serverKey = try NTLMSSP.verifyAuthenticate((prefix + message + suffix)[...], negotiate: Self.negotiate,
                                                       challenge: challenge, password: Self.password)
        #expect(serverKey == clientKey)
    }

    @Test("Every truncation of a CHALLENGE is malformed")
    func truncatedChallenge() {
        let message = NTLMSSP.challenge(serverChallenge: [1, 2, 3, 4, 5, 6, 7, 8], timestamp: 1).message
        for count in 0..<message.count {
            expectMalformed("CHALLENGE cut to \(count) bytes") { () throws(SMB2Error) in
                _ = try NTLMChallenge(decoding: message[..<count])
            }
        }
    }

    @Test("CHALLENGE fields past the end, bad target information and another message type are malformed")
    func hostileChallenge() {
        let message = NTLMSSP.challenge(serverChallenge: [1, 2, 3, 4, 5, 6, 7, 8], timestamp: 1).message
        let cases: [(String, [UInt8])] = [
            ("TargetInfo offset past the end", setting(UInt32.max, at: 44, in: message)),
            ("TargetInfo offset one past", setting(UInt32(message.count - 3), at: 44, in: message)),
            ("TargetInfo length past the end", setting(UInt16.max, at: 40, in: message)),
            ("TargetName offset past the end", setting(UInt32(message.count + 1), at: 16, in: message)),
            ("TargetName length past the end", setting(UInt16(message.count), at: 12, in: message)),
            ("message type 3", setting(UInt32(3), at: 8, in: message)),
            ("no signature", flipping(0, in: message)),
            ("AV pair length past the end", challengeMessage(targetInfo: [1, 0, 0xff, 0xff, 0, 0, 0, 0])),
            ("AV pair header cut", challengeMessage(targetInfo: [1, 0, 0])),
            ("no MsvAvEOL", challengeMessage(targetInfo: [1, 0, 2, 0, 0x41, 0])),
            ("MsvAvEOL with a value", challengeMessage(targetInfo: [0, 0, 2, 0, 0, 0])),
            ("MsvAvTimestamp of 4 bytes", challengeMessage(targetInfo: [7, 0, 4, 0, 1, 2, 3, 4, 0, 0, 0, 0])),
            ("MsvAvFlags of 8 bytes", challengeMessage(targetInfo: [6, 0, 8, 0] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 0])),
            ("65 pairs", challengeMessage(targetInfo: Array(repeating: [9, 0, 0, 0], count: 65).flatMap { $0 } + [0, 0, 0, 0])),
            ("10,000 pairs", challengeMessage(targetInfo: Array(repeating: [9, 0, 0, 0], count: 10_000).flatMap { $0 } + [0, 0, 0, 0])),
        ]
        for (label, bytes) in cases {
            expectMalformed(label) { () throws(SMB2Error) in _ = try NTLMChallenge(decoding: bytes[...]) }
        }
    }

    @Test("A target information list of 64 pairs and MsvAvEOL decodes")
    func sixtyFourPairs() throws {
        let list: [UInt8] = Array(repeating: [9, 0, 1, 0, 0x5a], count: 64).flatMap { $0 } + [0, 0, 0, 0]
        let challenge = try NTLMChallenge(decoding: challengeMessage(targetInfo: list)[...])
        #expect(challenge.targetInfo.pairs.count == 64)
        #expect(challenge.targetInfo.encoded() == list)
    }

    @Test("MsvAvFlags is set in place, or added before MsvAvEOL")
    func settingFlags() {
        let empty = NTLMTargetInfo()
        #expect(empty.settingFlags(2).encoded() == [6, 0, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0])
        let withFlags = NTLMTargetInfo(pairs: [.init(id: 6, value: [1, 0, 0, 0]), .init(id: 1, value: [0x41, 0])])
        #expect(withFlags.settingFlags(2).pairs == [.init(id: 6, value: [3, 0, 0, 0]), .init(id: 1, value: [0x41, 0])])
        #expect(withFlags.settingFlags(2).flags == 3)
    }

    @Test("Every truncation of an AUTHENTICATE is malformed")
    func truncatedAuthenticate() throws {
        let (challenge, message, _) = try Self.exchange()
        for count in 0..<message.count {
            expectMalformed("AUTHENTICATE cut to \(count) bytes") { () throws(SMB2Error) in
                _ = try NTLMSSP.verifyAuthenticate(message[..<count], negotiate: Self.negotiate, challenge: challenge,
                                                   password: Self.password)
            }
        }
    }

    @Test("AUTHENTICATE fields past the end and bad NTLMv2 responses are malformed")
    func hostileAuthenticate() throws {
        let (challenge, message, _) = try Self.exchange()
        var cases: [(String, [UInt8])] = []
        for (index, descriptor) in stride(from: 12, through: 52, by: 8).enumerated() {
            cases.append(("field \(index) offset past the end", setting(UInt32.max, at: descriptor + 4, in: message)))
            cases.append(("field \(index) offset at the end plus one", setting(UInt32(message.count + 1), at: descriptor + 4, in: message)))
            cases.append(("field \(index) length past the end", setting(UInt16.max, at: descriptor, in: message)))
        }
        cases.append(("odd user name length", setting(UInt16(3), at: 36, in: message)))
        cases.append(("message type 2", setting(UInt32(2), at: 8, in: message)))
        let ntlmv2 = { (response: [UInt8]) throws(SMB2Error) -> [UInt8] in
            try NTLMAuthenticateMessage(lmChallengeResponse: [], ntChallengeResponse: response, domain: "ITEREXTRACT",
                                        user: "alice", flags: 0xa288_8205).encoded()
        }
        let header: [UInt8] = [1, 1] + [UInt8](repeating: 0, count: 26)
        cases.append(("an NTLMv2 response of 40 bytes", try ntlmv2([UInt8](repeating: 0, count: 40))))
        cases.append(("client blob type 2", try ntlmv2([UInt8](repeating: 0, count: 16) + [2, 1] + header.dropFirst(2) + [0, 0, 0, 0, 0, 0, 0, 0])))
        cases.append(("client blob without MsvAvEOL", try ntlmv2([UInt8](repeating: 0, count: 16) + header + [1, 0, 2, 0, 0x41, 0, 0, 0])))
        cases.append(("client blob AV pair past the end", try ntlmv2([UInt8](repeating: 0, count: 16) + header + [1, 0, 0xff, 0, 0, 0, 0, 0])))
        cases.append(("client blob of 16,000 pairs", try ntlmv2([UInt8](repeating: 0, count: 16) + header
                                                                  + Array(repeating: [9, 0, 0, 0], count: 16_000).flatMap { $0 } + [0, 0, 0, 0, 0, 0, 0, 0])))
        for (label, bytes) in cases {
            expectMalformed(label) { () throws(SMB2Error) in
                _ = try NTLMSSP.verifyAuthenticate(bytes[...], negotiate: Self.negotiate, challenge: challenge,
                                                   password: Self.password)
            }
        }
    }

    @Test("Every single-byte change to a CHALLENGE or AUTHENTICATE throws or decodes, never traps")
    func everyByteChanged() throws {
        let (challenge, message, _) = try Self.exchange()
        for offset in challenge.message.indices {
            for value: UInt8 in [0x00, 0x7f, 0x80, 0xff] {
                var bytes = challenge.message
                bytes[offset] = value
                _ = try? NTLMChallenge(decoding: bytes[...])
            }
        }
        for offset in message.indices {
            for value: UInt8 in [0x00, 0x7f, 0x80, 0xff] {
                var bytes = message
                bytes[offset] = value
                _ = try? NTLMSSP.verifyAuthenticate(bytes[...], negotiate: Self.negotiate, challenge: challenge,
                                                    password: Self.password)
            }
        }
    }

    @Test("Credentials never show the password")
    func credentialsRedacted() {
        let credentials = SMB2Credentials(user: "alice", domain: "ITEREXTRACT", password: "hunter2-secret")
        var dumped = ""
        dump(credentials, to: &dumped)
        let texts = [credentials.description, credentials.debugDescription, "\(credentials)",
                     String(reflecting: credentials), dumped, String(describing: [credentials])]
        for text in texts {
            #expect(!text.contains("hunter2"), "\(text)")
            #expect(text.contains("alice"), "\(text)")
        }
        #expect(credentials.description == #"SMB2Credentials(user: "ITEREXTRACT\\alice", password: <redacted>)"#)
    }

    @Test("DOMAIN\\user splits at the first backslash")
    func qualifiedUser() {
        let qualified = SMB2Credentials(qualifiedUser: #"ITEREXTRACT\alice"#, password: "p")
        #expect(qualified.user == "alice" && qualified.domain == "ITEREXTRACT")
        let bare = SMB2Credentials(qualifiedUser: "alice", password: "p")
        #expect(bare.user == "alice" && bare.domain.isEmpty)
        #expect(bare.qualifiedUser == "alice" && qualified.qualifiedUser == #"ITEREXTRACT\alice"#)
    }
}
