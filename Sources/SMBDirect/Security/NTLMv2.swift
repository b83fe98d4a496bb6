import Crypto

/// The NTLMv2 computations of MS-NLMP 3.3.2, one function each so that every step can be
/// checked against the document's example (4.2.4). HMAC-MD5 is swift-crypto's, MD4 is
/// ``MD4``.
package enum NTLMv2 {
    /// The size of the server's and the client's challenge.
    package static let challengeByteCount = 8
    /// The size of NTProofStr, the HMAC-MD5 that opens an NtChallengeResponse.
    package static let proofByteCount = 16
    /// The size of the client blob's fixed part before the target information: RespType,
    /// HiRespType, six reserved bytes, the time, the client challenge and four reserved bytes.
    package static let clientBlobHeaderByteCount = 28

    /// `string` with every scalar that has a one-scalar uppercase form replaced by it. Windows
    /// uppercases user names one UTF-16 unit at a time (`RtlUpcaseUnicodeString`), so a
    /// character whose uppercase is longer, like "ß" ("SS"), stays as it is rather than
    /// growing as `String.uppercased()` would make it.
    package static func uppercasedForNTLM(_ string: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in string.unicodeScalars {
            let upper = scalar.properties.uppercaseMapping.unicodeScalars
            if upper.count == 1, let single = upper.first {
                scalars.append(single)
            } else {
                scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// The NT hash, NTOWFv1 of MS-NLMP 3.3.1: MD4 of the password in UTF-16LE.
    package static func ntHash(password: String) -> [UInt8] {
        MD4.hash(utf16LittleEndian(password))
    }

    /// ResponseKeyNT, NTOWFv2 of MS-NLMP 3.3.2: HMAC-MD5 keyed with the NT hash over the
    /// uppercased user name followed by the domain as given, both UTF-16LE.
    package static func responseKeyNT(ntHash: [UInt8], user: String, domain: String) -> [UInt8] {
        hmacMD5(key: ntHash, utf16LittleEndian(uppercasedForNTLM(user) + domain))
    }

    /// The client blob, `temp` in MS-NLMP 3.3.2 (NTLMv2_CLIENT_CHALLENGE, 2.2.2.7): RespType 1,
    /// HiRespType 1, six zero bytes, `time` as a little-endian FILETIME, the 8-byte client
    /// challenge, four zero bytes, the encoded target information (ending with MsvAvEOL) and
    /// four more zero bytes.
    package static func clientBlob(time: UInt64, clientChallenge: [UInt8], targetInfo: [UInt8]) -> [UInt8] {
        var writer = SMB2MessageWriter(capacity: clientBlobHeaderByteCount + targetInfo.count + 4)
        writer.append(UInt8(1))
        writer.append(UInt8(1))
        writer.appendZeros(6)
        writer.append(time)
        writer.append(clientChallenge)
        writer.appendZeros(4)
        writer.append(targetInfo)
        writer.appendZeros(4)
        return writer.bytes
    }

    /// NTProofStr: HMAC-MD5 keyed with ResponseKeyNT over the server challenge followed by the
    /// client blob.
    package static func ntProofStr(responseKeyNT: [UInt8], serverChallenge: [UInt8], clientBlob: [UInt8]) -> [UInt8] {
        hmacMD5(key: responseKeyNT, serverChallenge + clientBlob)
    }

    /// NtChallengeResponse: NTProofStr followed by the client blob it proves.
    package static func ntChallengeResponse(responseKeyNT: [UInt8], serverChallenge: [UInt8], clientBlob: [UInt8]) -> [UInt8] {
        ntProofStr(responseKeyNT: responseKeyNT, serverChallenge: serverChallenge, clientBlob: clientBlob) + clientBlob
    }

    /// LmChallengeResponse, the LMv2 response: HMAC-MD5 keyed with ResponseKeyNT over the
    /// server challenge followed by the client challenge, then the client challenge. When the
    /// CHALLENGE's target information carries MsvAvTimestamp, MS-NLMP 3.1.5.1.2 has the client
    /// send 24 zero bytes instead (`timestampPresent`).
    package static func lmChallengeResponse(responseKeyNT: [UInt8], serverChallenge: [UInt8], clientChallenge: [UInt8],
                                            timestampPresent: Bool = false) -> [UInt8] {
        if timestampPresent { return [UInt8](repeating: 0, count: 24) }
        return hmacMD5(key: responseKeyNT, serverChallenge + clientChallenge) + clientChallenge
    }

    /// SessionBaseKey: HMAC-MD5 keyed with ResponseKeyNT over NTProofStr.
    package static func sessionBaseKey(responseKeyNT: [UInt8], ntProofStr: [UInt8]) -> [UInt8] {
        hmacMD5(key: responseKeyNT, ntProofStr)
    }

    /// HMAC-MD5 (RFC 2104) of `message` keyed with `key`.
    package static func hmacMD5(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<Insecure.MD5>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
