import Crypto
import ScatterList

/// The algorithms that sign SMB2 messages, by their ids in the SMB2_SIGNING_CAPABILITIES
/// negotiate context (MS-SMB2 2.2.3.1.7).
public enum SMB2SigningAlgorithm: UInt16, Sendable, CustomStringConvertible {
    /// HMAC-SHA256, truncated to 16 bytes: dialects 2.0.2 and 2.1.
    case hmacSHA256 = 0x0000
    /// AES-128-CMAC: dialects 3.0, 3.0.2 and 3.1.1.
    case aesCMAC = 0x0001
    /// AES-128-GMAC: dialect 3.1.1, when negotiated. ``SMB2Signer`` does not implement it.
    case aesGMAC = 0x0002

    /// The algorithm's name as MS-SMB2 spells it, such as `AES-CMAC`.
    public var description: String {
        switch self {
        case .hmacSHA256: "HMAC-SHA256"
        case .aesCMAC: "AES-CMAC"
        case .aesGMAC: "AES-GMAC"
        }
    }
}

/// Signs SMB2 messages and checks their signatures (MS-SMB2 3.1.4.1, 3.1.5.1) with one
/// session's signing key.
///
/// The signature covers the message with its 16-byte Signature field (header bytes 48..<64)
/// taken as zero, followed by the bytes of a payload described by a scatter table, which
/// are streamed through the MAC page by page (ScatterList's `MappingIterator`), never copied into one
/// buffer: a WRITE's data is signed where it lies.
public struct SMB2Signer: Sendable {
    /// `SMB2_FLAGS_SIGNED`: the header's Flags bit that marks a signed message.
    public static let signedFlag: UInt32 = 0x0000_0008
    /// Where the Signature field lies in the header.
    public static let signatureRange = 48..<64
    /// The header's size, which every signed message has at least.
    static let headerSize = 64
    /// The Flags field's offset in the header.
    static let flagsOffset = 16

    /// The algorithm that signs.
    public let algorithm: SMB2SigningAlgorithm
    private let key: SymmetricKey

    /// A signer with `key`: the session key for HMAC-SHA256 (dialects 2.x), the 16-byte
    /// signing key derived from it for AES-CMAC (dialects 3.x, MS-SMB2 3.1.4.2).
    ///
    /// - Precondition: `algorithm` is not ``SMB2SigningAlgorithm/aesGMAC``, and an AES-CMAC
    ///   key is 16 bytes long.
    public init(key: [UInt8], algorithm: SMB2SigningAlgorithm) {
        switch algorithm {
        case .hmacSHA256:
            precondition(!key.isEmpty, "an HMAC-SHA256 signing key is not empty")
        case .aesCMAC:
            precondition(key.count == AESCMAC.byteCount, "an AES-CMAC signing key is 16 bytes, not \(key.count)")
        case .aesGMAC:
            preconditionFailure("AES-GMAC signing is not implemented; negotiate AES-CMAC")
        }
        self.algorithm = algorithm
        self.key = SymmetricKey(data: key)
    }

    /// The 16-byte signature of a message whose header and body are `message` and whose
    /// payload, if any, follows as the bytes `payload` describes. The Signature field of
    /// `message` is read as zero whatever it holds; `message` is not changed.
    ///
    /// - Precondition: `message` holds at least the 64-byte header.
    public func signature(header message: UnsafeRawBufferPointer, payload: ScatterTable?) -> [UInt8] {
        precondition(message.count >= Self.headerSize, "a signed message holds the 64-byte SMB2 header")
        return switch algorithm {
        case .hmacSHA256: signature(of: message, payload, through: HMAC<SHA256>(key: key))
        case .aesCMAC: signature(of: message, payload, through: AESCMAC(key: key))
        case .aesGMAC: preconditionFailure("AES-GMAC signing is not implemented")
        }
    }

    /// Streams the message, its Signature field as zeros, then the payload's pages through `mac`.
    private func signature(of message: UnsafeRawBufferPointer, _ payload: ScatterTable?,
                           through mac: consuming some SigningMAC) -> [UInt8] {
        var mac = mac
        mac.update(UnsafeRawBufferPointer(rebasing: message[..<Self.signatureRange.lowerBound]))
        withUnsafeBytes(of: (UInt64(0), UInt64(0))) { mac.update($0) }
        mac.update(UnsafeRawBufferPointer(rebasing: message[Self.signatureRange.upperBound...]))
        if let payload {
            for piece in MappingIterator(payload) { mac.update(UnsafeRawBufferPointer(piece.bytes)) }
        }
        return mac.signature()
    }

    /// Signs `message` in place: sets `SMB2_FLAGS_SIGNED` in its header and writes the
    /// signature of the message (and of `payload`, which follows it) into the Signature field.
    ///
    /// - Precondition: `message` holds at least the 64-byte header.
    public func sign(_ message: inout [UInt8], payload: ScatterTable? = nil) {
        precondition(message.count >= Self.headerSize, "a signed message holds the 64-byte SMB2 header")
        message.withUnsafeMutableBytes { bytes in
            let flags = UnsafeRawBufferPointer(bytes).loadLittleEndian(UInt32.self, at: Self.flagsOffset)
            bytes.storeLittleEndian(flags | Self.signedFlag, at: Self.flagsOffset)
            let signature = signature(header: UnsafeRawBufferPointer(bytes), payload: payload)
            bytes[Self.signatureRange].copyBytes(from: signature)
        }
    }

    /// Whether the Signature field of a received message is the signature of the rest of it.
    /// The comparison takes the same time wherever the signatures differ. A message shorter
    /// than the header is not valid.
    public func verify(_ message: [UInt8]) -> Bool {
        guard message.count >= Self.headerSize else { return false }
        let expected = message.withUnsafeBytes { signature(header: $0, payload: nil) }
        return constantTimeEqual(expected, message[Self.signatureRange])
    }
}

/// A MAC a signature streams through: what the signing algorithms have in common.
private protocol SigningMAC {
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// The 16-byte signature of everything added.
    consuming func signature() -> [UInt8]
}

extension AESCMAC: SigningMAC {
    consuming func signature() -> [UInt8] { finalize() }
}

/// SMB 2.x signs with the full HMAC-SHA256, truncated to its first 16 bytes (MS-SMB2 3.1.4.1).
extension HMAC: SigningMAC where H == SHA256 {
    mutating func update(_ bytes: UnsafeRawBufferPointer) { update(data: bytes) }
    consuming func signature() -> [UInt8] { Array(finalize().prefix(AESCMAC.byteCount)) }
}
