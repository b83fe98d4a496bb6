import Crypto
import SMBDirect
import Testing

/// The HMAC-SHA256 the KDF and SMB 2.x signing use is swift-crypto's: RFC 4231 section 4
/// shows it is used right (keys shorter than, equal to and longer than the 64-byte block).
@Suite("HMAC-SHA256 (RFC 4231)")
struct HMACSHA256Tests {
    /// RFC 4231 section 4: test cases 1-4, 6 and 7 (key, data, HMAC-SHA-256). Test case 5
    /// checks truncation to 128 bits only.
    static let cases: [(name: String, key: [UInt8], data: [UInt8], mac: [UInt8])] = [
        ("4.2 test case 1", [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
         hexBytes("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")),
        ("4.3 test case 2", Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         hexBytes("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")),
        ("4.4 test case 3", [UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
         hexBytes("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe")),
        ("4.5 test case 4", Array(1...25), [UInt8](repeating: 0xcd, count: 50),
         hexBytes("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")),
        ("4.7 test case 6", [UInt8](repeating: 0xaa, count: 131),
         Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         hexBytes("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")),
        ("4.8 test case 7", [UInt8](repeating: 0xaa, count: 131),
         Array(("This is a test using a larger than block-size key and a larger than block-size data. "
                + "The key needs to be hashed before being used by the HMAC algorithm.").utf8),
         hexBytes("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2")),
    ]

    @Test("RFC 4231 test cases 1-4, 6 and 7", arguments: cases.indices)
    func rfcCase(index: Int) {
        let (name, key, data, expected) = Self.cases[index]
        let mac = HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key))
        #expect(Array(mac) == expected, "\(name)")
    }
}

@Suite("SMB 3.x key derivation (SP 800-108 counter mode, HMAC-SHA256)")
struct SMB3KeyDerivationTests {
    /// NIST CAVP, KBKDF "KDF in Counter Mode" (KDFCTR_gen.rsp, CAVS 14.4), section
    /// [PRF=HMAC_SHA256] [CTRLOCATION=BEFORE_FIXED] [RLEN=32_BITS]: COUNT 0 (L = 128),
    /// COUNT 10 (L = 256) and COUNT 30 (L = 320, two PRF blocks). (KI, FixedInputData, KO.)
    static let cavp: [(count: Int, key: [UInt8], fixedInput: [UInt8], output: [UInt8])] = [
        (0, hexBytes("dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0"),
         hexBytes("""
             01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b8
             64a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac
             """),
         hexBytes("10621342bfb0fd40046c0e29f2cfdbf0")),
        (10, hexBytes("e204d6d466aad507ffaf6d6dab0a5b26152c9e21e764370464e360c8fbc765c6"),
         hexBytes("""
             7b03b98d9f94b899e591f3ef264b71b193fba7043c7e953cde23bc5384bc1a62
             93580115fae3495fd845dadbd02bd6455cf48d0f62b33e62364a3a80
             """),
         hexBytes("770dfab6a6a4a4bee0257ff335213f78d8287b4fd537d5c1fffa956910e7c779")),
        (30, hexBytes("c4bedbddb66493e7c7259a3bbbc25f8c7e0ca7fe284d92d431d9cd99a0d214ac"),
         hexBytes("""
             1c69c54766791e315c2cc5c47ecd3ffab87d0d273dd920e70955814c220eacac
             e6a5946542da3dfe24ff626b4897898cafb7db83bdff3c14fa46fd4b
             """),
         hexBytes("1da47638d6c9c4d04d74d4640bbd42ab814d9e8cc22f4326695239f96b0693f12d0dd1152cf44430")),
    ]

    @Test("NIST CAVP KBKDF counter mode, HMAC-SHA256, counter before the fixed input, 32 bits",
          arguments: cavp.indices)
    func cavpVector(index: Int) {
        let vector = Self.cavp[index]
        let output = SMB3KeyDerivation.counterMode(key: vector.key, fixedInput: vector.fixedInput,
                                                   byteCount: vector.output.count)
        #expect(output == vector.output, "COUNT = \(vector.count)")
    }

    /// Microsoft Open Specifications blog, "SMB 2 and SMB 3 security in Windows 10: the
    /// anatomy of signing and cryptographic keys" (E. Olougouna, 2017), appendix "Key
    /// derivation example for SMB 3.0 multichannel": both channels' SessionKey and SigningKey.
    @Test("SMB 3.0 signing keys of Microsoft's multichannel example")
    func smb30SigningKeys() {
        let channels = [
            (hexBytes("7CD451825D0450D235424E44BA6E78CC"), hexBytes("0B7E9C5CAC36C0F6EA9AB275298CEDCE")),
            (hexBytes("4E01A2B313BCF660CC250BEF021AEDE6"), hexBytes("BA1A17DBBFEC349BCA105563D598952F")),
        ]
        for (sessionKey, signingKey) in channels {
            #expect(SMB3KeyDerivation.signingKey(sessionKey: sessionKey, dialect: SMB3KeyDerivation.dialect300) == signingKey)
            #expect(SMB3KeyDerivation.signingKey(sessionKey: sessionKey, dialect: SMB3KeyDerivation.dialect302) == signingKey)
        }
    }

    /// The same blog, appendix "Key derivation example for SMB 3.1.1 multichannel": the
    /// master session's SessionKey, its final PreauthIntegrityHashValue and its SigningKey.
    static let smb311SessionKey = hexBytes("270E1BA896585EEB7AF3472D3B4C75A7")
    static let smb311PreauthIntegrityHash = hexBytes("""
        0DD13628CC3ED218EF9DF9772D436D0887AB9814BFAE63A80AA845F36909DB79
        28622DDDAD522D9751640A459762C5A9D6BB084CBB3CE6BDADEF5D5BCE3C6C01
        """)
    static let smb311SigningKey = hexBytes("73FE7A9A77BEF0BDE49C650D8CCB5F76")

    @Test("SMB 3.1.1 signing key of Microsoft's example, from the preauthentication integrity hash")
    func smb311SigningKey() {
        let key = SMB3KeyDerivation.signingKey(sessionKey: Self.smb311SessionKey, dialect: SMB3KeyDerivation.dialect311,
                                               preauthIntegrityHash: Self.smb311PreauthIntegrityHash)
        #expect(key == Self.smb311SigningKey)
        // The hash is the context: another hash gives another key.
        var otherHash = Self.smb311PreauthIntegrityHash
        otherHash[63] ^= 1
        #expect(SMB3KeyDerivation.signingKey(sessionKey: Self.smb311SessionKey, dialect: SMB3KeyDerivation.dialect311,
                                             preauthIntegrityHash: otherHash) != Self.smb311SigningKey)
    }

    @Test("derive builds Label ‖ 0x00 ‖ Context ‖ [L]₃₂ and returns L / 8 bytes")
    func deriveLayout() {
        let key = Array(UInt8(0)..<32)
        let label = Array("SMBSigningKey\0".utf8)
        let context = Array(UInt8(100)..<164)
        for bits in [128, 256] {
            let fixedInput = label + [0] + context + [0, 0, UInt8(bits >> 8), UInt8(bits & 0xff)]
            let derived = SMB3KeyDerivation.derive(key: key, label: label, context: context, bitCount: bits)
            #expect(derived.count == bits / 8)
            #expect(derived == SMB3KeyDerivation.counterMode(key: key, fixedInput: fixedInput, byteCount: bits / 8))
        }
        // L is part of the input: the 128-bit key is not a prefix of the 256-bit one.
        let short = SMB3KeyDerivation.derive(key: key, label: label, context: context, bitCount: 128)
        let long = SMB3KeyDerivation.derive(key: key, label: label, context: context, bitCount: 256)
        #expect(Array(long.prefix(16)) != short)
    }
}
