import Crypto
import IterExtract
import SMBDirect
import ScatterList
import TestKit
import Testing

/// A payload scattered over a page pool: segments of odd sizes at odd offsets (one crossing
/// pages, one a whole page, one a single byte), filled with a pattern, and a scatter table
/// extracted from an iterator over them.
final class ScatteredPayload {
    static let ranges = [(100, 5000), (9000, 1), (3 * 4096, 4096), (20000, 777), (30001, 9000)]

    let pool: PagePool
    let memory: IteratorMemory
    let table = ScatterTable()
    let ledger = PinLedger(mode: .exact)

    init(kind: IOIteratorKind) throws {
        pool = try PagePool(pageCount: 16)
        for index in 0..<pool.byteCount { pool.baseAddress.storeBytes(of: UInt8(truncatingIfNeeded: index &* 7 &+ 3), toByteOffset: index, as: UInt8.self) }
        let base = UInt(bitPattern: pool.baseAddress)
        let segments = Self.ranges.map { MemoryRange(address: base + UInt($0.0), length: $0.1) }
        memory = IteratorMemory(pool: pool, segments: segments, bioVecs: segments.map(IteratorMemory.bioVec(over:)))
        var iterator = memory.iterator(kind)
        try iterator.extract(maxSize: .max, into: table, maxEntries: 64, ledger: ledger)
        table.markEnd()
    }

    /// The payload's bytes, copied flat.
    var bytes: [UInt8] {
        Self.ranges.flatMap { Array(UnsafeRawBufferPointer(start: pool.baseAddress + $0.0, count: $0.1)) }
    }

    /// Flips the bits of the payload's byte at `offset` (from the start of the first segment's
    /// bytes, in payload order).
    func flip(payloadByte offset: Int) {
        var left = offset
        for (start, length) in Self.ranges {
            if left < length {
                let byte = pool.baseAddress.load(fromByteOffset: start + left, as: UInt8.self)
                pool.baseAddress.storeBytes(of: byte ^ 0xff, toByteOffset: start + left, as: UInt8.self)
                return
            }
            left -= length
        }
        preconditionFailure("offset \(offset) is past the payload")
    }

    func release() {
        table.releasePins(ledger: ledger)
    }
}

@Suite("SMB2 signing")
struct SMB2SigningTests {
    static let key = Array(UInt8(0x40)..<0x50)
    static let algorithms: [SMB2SigningAlgorithm] = [.hmacSHA256, .aesCMAC]

    /// A WRITE request's header and 48-byte body, with something other than zeros in the
    /// Signature field.
    static let message: [UInt8] = {
        var message = [0xFE, 0x53, 0x4D, 0x42, 64, 0] + (6..<112).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        message[12] = 0x09
        return message
    }()

    func signature(_ signer: SMB2Signer, _ message: [UInt8], payload: ScatterTable? = nil) -> [UInt8] {
        message.withUnsafeBytes { signer.signature(header: $0, payload: payload) }
    }

    @Test("a payload signed through a table of scattered pieces gives the signature of the same bytes contiguous",
          arguments: algorithms, [IOIteratorKind.iovec, .bvec])
    func scatteredEqualsContiguous(algorithm: SMB2SigningAlgorithm, kind: IOIteratorKind) throws {
        let signer = SMB2Signer(key: Self.key, algorithm: algorithm)
        let payload = try ScatteredPayload(kind: kind)
        defer { payload.release() }
        #expect(payload.table.count >= ScatteredPayload.ranges.count)
        let scattered = signature(signer, Self.message, payload: payload.table)
        #expect(scattered.count == 16)
        #expect(scattered == signature(signer, Self.message + payload.bytes))
        #expect(scattered != signature(signer, Self.message))
    }

    @Test("the signature is the MAC of the message with a zero Signature field (HMAC-SHA256 truncated to 16 bytes)",
          arguments: algorithms)
    func macOfZeroedMessage(algorithm: SMB2SigningAlgorithm) {
        var zeroed = Self.message
        zeroed.replaceSubrange(48..<64, with: repeatElement(0, count: 16))
        let expected = switch algorithm {
        case .hmacSHA256:
            Array(HMAC<SHA256>.authenticationCode(for: zeroed, using: SymmetricKey(data: Self.key)).prefix(16))
        default:
            zeroed.withUnsafeBytes { bytes in
                var mac = AESCMAC(key: SymmetricKey(data: Self.key))
                mac.update(bytes)
                return mac.finalize()
            }
        }
        #expect(signature(SMB2Signer(key: Self.key, algorithm: algorithm), Self.message) == expected)
    }

    @Test("flipping any byte of the header, the body or the payload changes the signature", arguments: algorithms)
    func everyByteCounts(algorithm: SMB2SigningAlgorithm) throws {
        let signer = SMB2Signer(key: Self.key, algorithm: algorithm)
        let payload = try ScatteredPayload(kind: .iovec)
        defer { payload.release() }
        let original = signature(signer, Self.message, payload: payload.table)
        for index in Self.message.indices where !SMB2Signer.signatureRange.contains(index) {
            var message = Self.message
            message[index] ^= 0x01
            #expect(signature(signer, message, payload: payload.table) != original, "message byte \(index)")
        }
        // Every segment's first and last byte, and a stride through the rest.
        var offsets = Set(stride(from: 0, to: payload.bytes.count, by: 211))
        var start = 0
        for (_, length) in ScatteredPayload.ranges {
            offsets.formUnion([start, start + length - 1])
            start += length
        }
        for offset in offsets.sorted() {
            payload.flip(payloadByte: offset)
            #expect(signature(signer, Self.message, payload: payload.table) != original, "payload byte \(offset)")
            payload.flip(payloadByte: offset)
        }
        #expect(signature(signer, Self.message, payload: payload.table) == original)
    }

    @Test("what the Signature field held before does not matter", arguments: algorithms)
    func signatureFieldIgnored(algorithm: SMB2SigningAlgorithm) {
        let signer = SMB2Signer(key: Self.key, algorithm: algorithm)
        let expected = signature(signer, Self.message)
        for fill: UInt8 in [0x00, 0xff, 0x5a] {
            var message = Self.message
            message.replaceSubrange(48..<64, with: repeatElement(fill, count: 16))
            #expect(signature(signer, message) == expected)
        }
    }

    @Test("sign sets SMB2_FLAGS_SIGNED and writes the signature; verify accepts it", arguments: algorithms)
    func signAndVerify(algorithm: SMB2SigningAlgorithm) throws {
        let signer = SMB2Signer(key: Self.key, algorithm: algorithm)
        var message = Self.message
        signer.sign(&message)
        var flagged = Self.message
        flagged[16] |= 0x08
        #expect(message[..<48] == flagged[..<48])
        #expect(message[64...] == flagged[64...])
        #expect(Array(message[48..<64]) == signature(signer, flagged))
        #expect(signer.verify(message))

        // A message signed with its payload in a table verifies once the payload follows it.
        let payload = try ScatteredPayload(kind: .bvec)
        defer { payload.release() }
        var withPayload = Self.message
        signer.sign(&withPayload, payload: payload.table)
        #expect(signer.verify(withPayload + payload.bytes))
        #expect(!signer.verify(withPayload))
    }

    @Test("verify rejects a wrong key, another algorithm, any modified byte and a short message", arguments: algorithms)
    func verifyRejects(algorithm: SMB2SigningAlgorithm) {
        let signer = SMB2Signer(key: Self.key, algorithm: algorithm)
        var message = Self.message
        signer.sign(&message)
        var wrongKey = Self.key
        wrongKey[0] ^= 1
        #expect(!SMB2Signer(key: wrongKey, algorithm: algorithm).verify(message))
        #expect(!SMB2Signer(key: Self.key, algorithm: algorithm == .aesCMAC ? .hmacSHA256 : .aesCMAC).verify(message))
        for index in message.indices {
            var modified = message
            modified[index] ^= 0x80
            #expect(!signer.verify(modified), "byte \(index)")
        }
        #expect(!signer.verify(message + [0]))
        #expect(!signer.verify(Array(message.prefix(63))))
        #expect(!signer.verify([]))
    }

    /// Microsoft Open Specifications blog, "SMB 2 and SMB 3 security in Windows 10: the
    /// anatomy of signing and cryptographic keys" (2017), appendix "Key derivation example
    /// for SMB 3.1.1 multichannel": the final SESSION_SETUP response (STATUS_SUCCESS,
    /// SessionId 0x100000000019), signed with AES-128-CMAC under the session's SigningKey.
    static let publishedSessionSetupResponse = hexBytes("""
        FE534D4240000100000000000100800009000000000000000300000000000000FFFE000000000000
        1900000000100000EBE146DA120BA25FC3376A49DFE31BC10900000048001D00A11B3019A0030A01
        00A3120410010000003B453CDC3524164200000000
        """)

    @Test("Microsoft's signed SMB 3.1.1 SESSION_SETUP response verifies, and signing it again gives the same bytes")
    func publishedSignedMessage() {
        let signingKey = SMB3KeyDerivation.signingKey(
            sessionKey: SMB3KeyDerivationTests.smb311SessionKey, dialect: SMB3KeyDerivation.dialect311,
            preauthIntegrityHash: SMB3KeyDerivationTests.smb311PreauthIntegrityHash)
        let signer = SMB2Signer(key: signingKey, algorithm: .aesCMAC)
        let published = Self.publishedSessionSetupResponse
        #expect(signer.verify(published))
        #expect(Array(published[48..<64]) == hexBytes("EBE146DA120BA25FC3376A49DFE31BC1"))
        var unsigned = published
        unsigned.replaceSubrange(48..<64, with: repeatElement(0, count: 16))
        unsigned[16] &= ~0x08
        signer.sign(&unsigned)
        #expect(unsigned == published)
    }
}
