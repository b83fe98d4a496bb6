import SMBDirect
import Testing

@Suite("MD4 (RFC 1320)")
struct MD4Tests {
    /// RFC 1320 appendix A.5, the test suite: every message and its digest.
    static let suite: [(message: String, digest: String)] = [
        ("", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        ("a", "bde52cb31de33e46245e05fbdbd6fb24"),
        ("abc", "a448017aaf21d8525fc10ae87aa6729d"),
        ("message digest", "d9130a8164549fe818874806e1c7014b"),
        ("abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
        (String(repeating: "1234567890", count: 8), "e33b4ddc9c38f2199c3e7b164fcc0536"),
    ]

    @Test("RFC 1320 appendix A.5", arguments: suite.indices)
    func rfcSuite(index: Int) {
        let (message, digest) = Self.suite[index]
        #expect(MD4.hash(Array(message.utf8)) == hexBytes(digest), "MD4(\"\(message)\")")
    }

    /// Messages of `count` bytes "a" around the padding's boundaries: 55 bytes take one block,
    /// 56 need a second block for the length, 63, 64 and 65 straddle a block's end, 119 to 129
    /// the second's. Digests from OpenSSL (`openssl dgst -md4 -provider legacy`).
    static let boundaries: [(count: Int, digest: String)] = [
        (55, "c889c81dd86c4d2e025778944ea02881"),
        (56, "d5f9a9e9257077a5f08b0b92f348b0ad"),
        (63, "7ea3da77432d44c323671097d1348fc8"),
        (64, "52f5076fabd22680234a3fa9f9dc5732"),
        (65, "330e377bf231f3cacfecc2c182fe7e5b"),
        (119, "e65dd227ccef97fa1d34d70189120f76"),
        (120, "b03ddbd470b47c013e0c7ab2ddd763db"),
        (128, "cb4a20a561558e29460190c91dced59f"),
        (129, "2adcd303c29f93a3ee33a560ece91cd2"),
    ]

    @Test("Lengths around the padding boundaries", arguments: boundaries.indices)
    func boundary(index: Int) {
        let (count, digest) = Self.boundaries[index]
        #expect(MD4.hash([UInt8](repeating: UInt8(ascii: "a"), count: count)) == hexBytes(digest), "\(count) bytes")
    }

    /// 1,000 bytes of a pattern covering every byte value (byte i is 7i + 3 modulo 256), a
    /// digest from OpenSSL; hashed from an array and from a slice inside a larger one.
    @Test("A long message of every byte value, from an array and a slice")
    func longMessage() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let expected = hexBytes("9a27d966bf4984d8597862b1c33bfbba")
        #expect(MD4.hash(message) == expected)
        let padded = [0xff] + message + [0xff]
        #expect(MD4.hash(padded[1...1000]) == expected)
    }
}
