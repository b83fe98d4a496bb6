import Crypto

/// The SMB 3.x key derivation (MS-SMB2 3.1.4.2): NIST SP 800-108's KDF in counter mode,
/// with HMAC-SHA256 as the PRF and a 32-bit counter placed before the fixed input, which
/// SMB builds as `Label ‖ 0x00 ‖ Context ‖ [L]₃₂`.
package enum SMB3KeyDerivation {
    /// Dialect 3.0, whose keys come from this KDF with constant contexts.
    package static let dialect300: UInt16 = 0x0300
    /// Dialect 3.0.2: keys as in 3.0.
    package static let dialect302: UInt16 = 0x0302
    /// Dialect 3.1.1, whose keys take the preauthentication integrity hash as context.
    package static let dialect311: UInt16 = 0x0311
    /// The size of the 3.1.1 preauthentication integrity hash (SHA-512).
    package static let preauthIntegrityHashByteCount = 64

    /// SP 800-108 section 5.1, counter mode, PRF HMAC-SHA256, r = 32, the counter before the
    /// fixed input: the first `byteCount` bytes of K(1) ‖ K(2) ‖ … where
    /// K(i) = HMAC-SHA256(`key`, [i]₃₂ ‖ `fixedInput`), i counted from 1, big-endian.
    ///
    /// - Precondition: `byteCount` is positive.
    package static func counterMode(key: [UInt8], fixedInput: [UInt8], byteCount: Int) -> [UInt8] {
        precondition(byteCount > 0, "a KDF derives at least one byte")
        let key = SymmetricKey(data: key)
        var output: [UInt8] = []
        output.reserveCapacity(byteCount + SHA256.byteCount)
        var counter: UInt32 = 1
        while output.count < byteCount {
            var prf = HMAC<SHA256>(key: key)
            withUnsafeBytes(of: counter.bigEndian) { prf.update(data: $0) }
            prf.update(data: fixedInput)
            output.append(contentsOf: prf.finalize())
            counter += 1
        }
        return Array(output.prefix(byteCount))
    }

    /// `bitCount` bits of key derived from `key` for `label` and `context`, as MS-SMB2
    /// 3.1.4.2 calls the KDF: the fixed input is `label ‖ 0x00 ‖ context ‖ [bitCount]₃₂`.
    /// `label` and `context` are passed with the terminating NUL that MS-SMB2 gives them.
    ///
    /// - Precondition: `bitCount` is 128 or 256, the key sizes SMB 3.x derives.
    package static func derive(key: [UInt8], label: [UInt8], context: [UInt8], bitCount: Int) -> [UInt8] {
        precondition(bitCount == 128 || bitCount == 256, "SMB 3.x derives 128- or 256-bit keys, not \(bitCount) bits")
        var fixedInput = label
        fixedInput.append(0)
        fixedInput.append(contentsOf: context)
        withUnsafeBytes(of: UInt32(bitCount).bigEndian) { fixedInput.append(contentsOf: $0) }
        return counterMode(key: key, fixedInput: fixedInput, byteCount: bitCount / 8)
    }

    /// The 16-byte signing key of a session (MS-SMB2 3.2.5.3.1, 3.3.5.5.3): for 3.0 and
    /// 3.0.2, label `"SMB2AESCMAC\0"` and context `"SmbSign\0"`; for 3.1.1, label
    /// `"SMBSigningKey\0"` and the session's preauthentication integrity hash as context.
    ///
    /// - Precondition: `dialect` is 3.0, 3.0.2 or 3.1.1, and `preauthIntegrityHash` is the
    ///   64-byte hash for 3.1.1 (and ignored otherwise).
    package static func signingKey(sessionKey: [UInt8], dialect: UInt16, preauthIntegrityHash: [UInt8] = []) -> [UInt8] {
        switch dialect {
        case dialect300, dialect302:
            return derive(key: sessionKey, label: Array("SMB2AESCMAC\0".utf8), context: Array("SmbSign\0".utf8), bitCount: 128)
        case dialect311:
            precondition(preauthIntegrityHash.count == preauthIntegrityHashByteCount,
                         "a 3.1.1 signing key needs the 64-byte preauthentication integrity hash")
            return derive(key: sessionKey, label: Array("SMBSigningKey\0".utf8), context: preauthIntegrityHash, bitCount: 128)
        default:
            preconditionFailure("dialect 0x\(String(dialect, radix: 16)) signs with the session key, not a derived one")
        }
    }
}
