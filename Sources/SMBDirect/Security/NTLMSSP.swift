/// The three NTLM messages of a session setup (MS-NLMP 2.2.1): the client sends NEGOTIATE
/// and AUTHENTICATE, the server answers with a CHALLENGE. This file holds the messages of
/// an anonymous session (empty credentials, no key derived, nothing signed);
/// `NTLMSSP+Authenticate.swift` adds the client's NTLMv2 AUTHENTICATE and
/// `NTLMSSP+Verify.swift` the in-process server's CHALLENGE and its check of an AUTHENTICATE.
package enum NTLMSSP {
    /// `"NTLMSSP\0"`, the first eight bytes of every NTLM message.
    static let signature: [UInt8] = Array("NTLMSSP".utf8) + [0]

    /// NEGOTIATE_MESSAGE, CHALLENGE_MESSAGE, AUTHENTICATE_MESSAGE.
    package enum MessageType: UInt32 {
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
    /// `NTLMSSP_NEGOTIATE_UNICODE`: strings are UTF-16LE rather than the OEM code page.
    static let unicodeFlag: UInt32 = 0x0000_0001
    /// `NTLMSSP_NEGOTIATE_VERSION`: an 8-byte Version field follows the fixed fields.
    static let versionFlag: UInt32 = 0x0200_0000
    /// `NTLMSSP_NEGOTIATE_KEY_EXCH`: the session key is a random one sent RC4-encrypted,
    /// which neither side here offers (the session key is then the session base key).
    static let keyExchangeFlag: UInt32 = 0x4000_0000
    /// The Version field this implementation sends: no product version (MS-NLMP 2.2.2.10
    /// keeps it for debugging only) and `NTLMSSP_REVISION_W2K3` (15).
    static let version: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 15]

    /// A NEGOTIATE_MESSAGE without domain or workstation (32 bytes).
    package static func negotiate() -> [UInt8] {
        var writer = SMB2MessageWriter()
        writer.append(signature)
        writer.append(MessageType.negotiate.rawValue)
        writer.append(clientFlags)
        for _ in 0..<2 { appendField(length: 0, offset: 32, to: &writer) }
        return writer.bytes
    }

    /// An anonymous AUTHENTICATE_MESSAGE: an LM response of one zero byte, everything else empty.
    package static func anonymousAuthenticate() -> [UInt8] {
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

    /// A minimal CHALLENGE_MESSAGE with `challenge` and a target information list holding
    /// only its terminator (no MsvAvTimestamp, as older servers send it): the challenge the
    /// tests and the fuzzers script. The in-process server sends
    /// ``challenge(serverChallenge:timestamp:targetName:)``.
    package static func challenge(_ challenge: UInt64) -> [UInt8] {
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
    package static func messageType(in blob: ArraySlice<UInt8>) -> MessageType? {
        guard let start = messageStart(in: blob), start <= blob.endIndex - 12 else { return nil }
        let raw = blob[start + 8..<start + 12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return MessageType(rawValue: raw)
    }

    /// The index in `blob` where the first NTLM signature starts, if any: the NTLM message
    /// itself when `blob` is raw, the token inside when it is wrapped in SPNEGO.
    static func messageStart(in blob: ArraySlice<UInt8>) -> Int? {
        guard blob.count >= signature.count else { return nil }
        var start = blob.startIndex
        while start <= blob.endIndex - signature.count {
            if blob[start..<start + signature.count].elementsEqual(signature) { return start }
            start += 1
        }
        return nil
    }

    /// Whether an AUTHENTICATE_MESSAGE names no user and carries no NT response (anonymous).
    package static func isAnonymous(_ blob: ArraySlice<UInt8>) -> Bool {
        let bytes = Array(blob)
        guard bytes.count >= 44 else { return false }
        let reader = SMB2MessageReader(bytes)
        guard let ntLength = try? reader.integer(UInt16.self, at: 20),
              let userLength = try? reader.integer(UInt16.self, at: 36)
        else { return false }
        return ntLength == 0 && userLength == 0
    }

    /// Writes a field descriptor (MS-NLMP 2.2.1): Len and MaxLen, both `length`, then the
    /// 32-bit offset of the field's bytes from the start of the message.
    static func appendField(length: Int, offset: Int, to writer: inout SMB2MessageWriter) {
        writer.append(UInt16(length))
        writer.append(UInt16(length))
        writer.append(UInt32(offset))
    }

    /// The bytes of the field whose descriptor is at `descriptorOffset` in `message`, every
    /// bound checked: the descriptor must lie inside the message, and so must the Len bytes
    /// at the offset it gives (even an empty field's offset may not point past the end).
    static func field(at descriptorOffset: Int, in message: SMB2MessageReader) throws(SMB2Error) -> ArraySlice<UInt8> {
        let length = try message.integer(UInt16.self, at: descriptorOffset)
        let offset = try message.integer(UInt32.self, at: descriptorOffset + 4)
        return try message.slice(at: Int(offset), count: Int(length))
    }
}
