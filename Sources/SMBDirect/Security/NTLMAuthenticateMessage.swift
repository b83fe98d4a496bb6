/// An AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3) with the Version field and the MIC: 64 bytes of
/// fixed fields, the 8-byte Version, the 16-byte MIC at offset 72, and the payload from
/// offset 88. Strings are UTF-16LE (`NTLMSSP_NEGOTIATE_UNICODE`).
package struct NTLMAuthenticateMessage: Sendable, Equatable {
    /// The offset of the MIC field.
    package static let micOffset = 72
    /// The size of the MIC field.
    package static let micByteCount = 16
    /// The offset of the payload, after the MIC.
    package static let payloadOffset = 88

    /// LmChallengeResponse.
    package var lmChallengeResponse: [UInt8]
    /// NtChallengeResponse (for NTLMv2, NTProofStr followed by the client blob).
    package var ntChallengeResponse: [UInt8]
    /// DomainName.
    package var domain: String
    /// UserName.
    package var user: String
    /// Workstation.
    package var workstation: String
    /// EncryptedRandomSessionKey (empty without `NTLMSSP_NEGOTIATE_KEY_EXCH`).
    package var encryptedRandomSessionKey: [UInt8]
    /// NegotiateFlags.
    package var flags: UInt32
    /// The MIC, or nil when a received message's payload starts before offset 88, leaving no
    /// room for one (a client that sends no MIC).
    package var mic: [UInt8]?
    /// The message as received, from its signature to its end (found as
    /// ``NTLMChallenge/message`` is): the bytes the MIC covers. Empty for a message built
    /// to be sent.
    package private(set) var received: [UInt8] = []

    /// A message of these fields; `mic` nil is sent as 16 zero bytes.
    package init(lmChallengeResponse: [UInt8], ntChallengeResponse: [UInt8], domain: String, user: String,
                 workstation: String = "", encryptedRandomSessionKey: [UInt8] = [], flags: UInt32, mic: [UInt8]? = nil) {
        self.lmChallengeResponse = lmChallengeResponse
        self.ntChallengeResponse = ntChallengeResponse
        self.domain = domain
        self.user = user
        self.workstation = workstation
        self.encryptedRandomSessionKey = encryptedRandomSessionKey
        self.flags = flags
        self.mic = mic
    }

    /// The message as sent: the fixed fields, ``NTLMSSP/version``, the MIC (zeros when nil)
    /// and the payload in field order: LmChallengeResponse, NtChallengeResponse, DomainName,
    /// UserName, Workstation, EncryptedRandomSessionKey.
    ///
    /// - Throws: ``SMB2Error/invalidArgument(_:)`` when a field is longer than the 65,535
    ///   bytes its length can say.
    package func encoded() throws(SMB2Error) -> [UInt8] {
        let fields = [lmChallengeResponse, ntChallengeResponse, utf16LittleEndian(domain),
                      utf16LittleEndian(user), utf16LittleEndian(workstation), encryptedRandomSessionKey]
        if let long = fields.first(where: { $0.count > Int(UInt16.max) }) {
            throw .invalidArgument("an AUTHENTICATE field of \(long.count) bytes (at most 65,535)")
        }
        var writer = SMB2MessageWriter(capacity: Self.payloadOffset + fields.reduce(0) { $0 + $1.count })
        writer.append(NTLMSSP.signature)
        writer.append(NTLMSSP.MessageType.authenticate.rawValue)
        var offset = Self.payloadOffset
        for field in fields {
            NTLMSSP.appendField(length: field.count, offset: offset, to: &writer)
            offset += field.count
        }
        writer.append(flags)
        writer.append(NTLMSSP.version)
        writer.append(mic ?? [UInt8](repeating: 0, count: Self.micByteCount))
        for field in fields { writer.append(field) }
        return writer.bytes
    }

    /// Decodes the AUTHENTICATE_MESSAGE in `blob`, raw or wrapped in SPNEGO, trusting nothing:
    /// every field descriptor and the bytes it points to must lie inside the message, and
    /// UTF-16 strings must have an even length. Strings are read as UTF-8 when the client did
    /// not negotiate Unicode (the OEM code page is not known here).
    ///
    /// - Throws: ``SMB2Error/malformed(_:)`` when `blob` holds no NTLM message, the message is
    ///   not an AUTHENTICATE, or a field is out of bounds.
    package init(decoding blob: ArraySlice<UInt8>) throws(SMB2Error) {
        guard let start = NTLMSSP.messageStart(in: blob) else {
            throw .malformed("no NTLM message in a \(blob.count)-byte security blob")
        }
        let reader = SMB2MessageReader(Array(blob[start...]))
        let type = try reader.integer(UInt32.self, at: 8)
        guard type == NTLMSSP.MessageType.authenticate.rawValue else {
            throw .malformed("NTLM message type \(type) where an AUTHENTICATE (3) was expected")
        }
        var fields: [ArraySlice<UInt8>] = []
        for descriptor in stride(from: 12, through: 52, by: 8) {
            fields.append(try NTLMSSP.field(at: descriptor, in: reader))
        }
        let flags = try reader.integer(UInt32.self, at: 60)
        let unicode = flags & NTLMSSP.unicodeFlag != 0
        let payloadStart = fields.filter { !$0.isEmpty }.map(\.startIndex).min() ?? reader.bytes.count
        let hasMIC = payloadStart >= Self.payloadOffset && reader.bytes.count >= Self.payloadOffset
        // Reading NegotiateFlags checked the 64 bytes before the Version field are there.
        let fixedEnd = hasMIC ? Self.payloadOffset : 64
        let end = start == blob.startIndex ? reader.bytes.count : fields.reduce(fixedEnd) { max($0, $1.endIndex) }
        self.lmChallengeResponse = Array(fields[0])
        self.ntChallengeResponse = Array(fields[1])
        self.domain = try Self.string(fields[2], unicode: unicode)
        self.user = try Self.string(fields[3], unicode: unicode)
        self.workstation = try Self.string(fields[4], unicode: unicode)
        self.encryptedRandomSessionKey = Array(fields[5])
        self.flags = flags
        self.mic = try hasMIC ? Array(reader.slice(at: Self.micOffset, count: Self.micByteCount)) : nil
        self.received = Array(reader.bytes[..<end])
    }

    /// A received string field: UTF-16LE with `unicode`, else UTF-8. Ill-formed UTF-16 is
    /// repaired (it then names no user), an odd length is malformed.
    private static func string(_ bytes: ArraySlice<UInt8>, unicode: Bool) throws(SMB2Error) -> String {
        unicode ? try SMBDirect.string(fromUTF16LittleEndian: bytes) : String(decoding: bytes, as: UTF8.self)
    }
}
