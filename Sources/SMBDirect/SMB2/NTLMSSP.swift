/// The three NTLM messages of an anonymous session setup (MS-NLMP 2.2.1): this
/// client sends NEGOTIATE and an AUTHENTICATE with empty credentials; the in-process
/// server answers with a CHALLENGE. No key is derived, so nothing is signed.
enum NTLMSSP {
    static let signature: [UInt8] = Array("NTLMSSP".utf8) + [0]

    /// NEGOTIATE_MESSAGE, CHALLENGE_MESSAGE, AUTHENTICATE_MESSAGE.
    enum MessageType: UInt32 {
        case negotiate = 1
        case challenge = 2
        case authenticate = 3
    }

    /// `NTLMSSP_NEGOTIATE_UNICODE | REQUEST_TARGET | NTLM | ALWAYS_SIGN | EXTENDED_SESSIONSECURITY | 128 | 56`.
    static let clientFlags: UInt32 = 0x0000_0001 | 0x0000_0004 | 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x2000_0000 | 0x8000_0000
    /// `NTLMSSP_NEGOTIATE_ANONYMOUS`.
    static let anonymousFlag: UInt32 = 0x0000_0800
    /// `NTLMSSP_NEGOTIATE_TARGET_INFO`.
    static let targetInfoFlag: UInt32 = 0x0080_0000

    /// A NEGOTIATE_MESSAGE without domain or workstation (32 bytes).
    static func negotiate() -> [UInt8] {
        var writer = SMB2MessageWriter()
        writer.append(signature)
        writer.append(MessageType.negotiate.rawValue)
        writer.append(clientFlags)
        for _ in 0..<2 { appendField(length: 0, offset: 32, to: &writer) }
        return writer.bytes
    }

    /// An anonymous AUTHENTICATE_MESSAGE: an LM response of one zero byte, everything else empty.
    static func anonymousAuthenticate() -> [UInt8] {
        var writer = SMB2MessageWriter()
        let payload = 64
        writer.append(signature)
        writer.append(MessageType.authenticate.rawValue)
        appendField(length: 1, offset: payload, to: &writer)
        for _ in 0..<5 { appendField(length: 0, offset: payload + 1, to: &writer) }
        writer.append(clientFlags | anonymousFlag)
        writer.append(UInt8(0))
        return writer.bytes
    }

    /// A CHALLENGE_MESSAGE with `challenge` and a target information list holding only its terminator.
    static func challenge(_ challenge: UInt64) -> [UInt8] {
        var writer = SMB2MessageWriter()
        writer.append(signature)
        writer.append(MessageType.challenge.rawValue)
        appendField(length: 0, offset: 48, to: &writer)
        writer.append(clientFlags | targetInfoFlag)
        writer.append(challenge)
        writer.appendZeros(8)
        appendField(length: 4, offset: 48, to: &writer)
        writer.appendZeros(4)
        return writer.bytes
    }

    /// The type of the NTLM message inside `blob` (raw, or wrapped in SPNEGO as many
    /// servers send it: the NTLM signature is found wherever it starts).
    static func messageType(in blob: ArraySlice<UInt8>) -> MessageType? {
        guard blob.count >= 12 else { return nil }
        var start = blob.startIndex
        while start <= blob.endIndex - 12 {
            if blob[start..<start + 8].elementsEqual(signature) {
                let raw = blob[start + 8..<start + 12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                return MessageType(rawValue: raw)
            }
            start += 1
        }
        return nil
    }

    /// Whether an AUTHENTICATE_MESSAGE names no user and carries no NT response (anonymous).
    static func isAnonymous(_ blob: ArraySlice<UInt8>) -> Bool {
        let bytes = Array(blob)
        guard bytes.count >= 44 else { return false }
        let reader = SMB2MessageReader(bytes)
        guard let ntLength = try? reader.integer(UInt16.self, at: 20),
              let userLength = try? reader.integer(UInt16.self, at: 36)
        else { return false }
        return ntLength == 0 && userLength == 0
    }

    private static func appendField(length: Int, offset: Int, to writer: inout SMB2MessageWriter) {
        writer.append(UInt16(length))
        writer.append(UInt16(length))
        writer.append(UInt32(offset))
    }
}
