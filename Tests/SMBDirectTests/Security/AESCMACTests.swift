import Crypto
import SMBDirect
import Testing

/// RFC 4493 section 4 (the same examples as NIST SP 800-38B appendix D.1): AES-128 key
/// 2b7e1516 28aed2a6 abf71588 09cf4f3c and the first 0, 16, 40 or 64 bytes of one message.
enum RFC4493 {
    static let key = hexBytes("2b7e1516 28aed2a6 abf71588 09cf4f3c")
    static let message = hexBytes("""
        6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51
        30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710
        """)
    /// (Mlen in bytes, T) for examples 1 to 4.
    static let examples: [(length: Int, tag: [UInt8])] = [
        (0, hexBytes("bb1d6929 e9593728 7fa37d12 9b756746")),
        (16, hexBytes("070a16b4 6b4d4144 f79bdd9d d04a287c")),
        (40, hexBytes("dfa66747 de9ae630 30ca3261 1497c827")),
        (64, hexBytes("51f0bebf 7e3b9d92 fc497417 79363cfe")),
    ]
}

@Suite("AES-128-CMAC (RFC 4493)")
struct AESCMACTests {
    func tag(_ pieces: [ArraySlice<UInt8>]) -> [UInt8] {
        var mac = AESCMAC(key: SymmetricKey(data: RFC4493.key))
        for piece in pieces { piece.withUnsafeBytes { mac.update($0) } }
        return mac.finalize()
    }

    @Test("RFC 4493 section 4, examples 1-4 (lengths 0, 16, 40 and 64)", arguments: 0..<4)
    func rfcExample(index: Int) {
        let (length, expected) = RFC4493.examples[index]
        #expect(tag([RFC4493.message[..<length]]) == expected)
    }

    @Test("the 64-byte example split into two or three updates at every point gives the same tag")
    func everySplit() {
        let message = RFC4493.message
        let expected = RFC4493.examples[3].tag
        for first in 0...message.count {
            #expect(tag([message[..<first], message[first...]]) == expected, "split at \(first)")
            for second in first...message.count {
                #expect(tag([message[..<first], message[first..<second], message[second...]]) == expected,
                        "split at \(first) and \(second)")
            }
        }
    }

    @Test("a one-bit change anywhere in the message changes the tag")
    func bitFlips() {
        let expected = RFC4493.examples[3].tag
        for index in RFC4493.message.indices {
            var message = RFC4493.message
            message[index] ^= 0x01
            #expect(tag([message[...]]) != expected, "byte \(index) flipped")
        }
    }
}
