/// A negotiate context of an SMB 3.1.1 NEGOTIATE request or response (MS-SMB2 2.2.3.1):
/// the two this package speaks, and any other kept as it came.
package enum SMB2NegotiateContext: Equatable {
    /// `SMB2_PREAUTH_INTEGRITY_CAPABILITIES` (2.2.3.1.1): the hash algorithms of the
    /// preauthentication integrity chain, and a salt.
    case preauthIntegrity(hashAlgorithms: [UInt16], salt: [UInt8])
    /// `SMB2_SIGNING_CAPABILITIES` (2.2.3.1.7): signing algorithms, most preferred first.
    case signing(algorithms: [UInt16])
    /// Any other context (encryption, compression, ...), its data as received.
    case other(type: UInt16, data: [UInt8])

    /// The ContextType of `SMB2_PREAUTH_INTEGRITY_CAPABILITIES`.
    package static let preauthIntegrityType: UInt16 = 0x0001
    /// The ContextType of `SMB2_SIGNING_CAPABILITIES`.
    package static let signingType: UInt16 = 0x0008
    /// The HashAlgorithm id of SHA-512, the only one MS-SMB2 defines.
    package static let sha512: UInt16 = 0x0001
    /// The most contexts a message may carry before it is refused: MS-SMB2 defines
    /// eight types, so a peer sending more is not negotiating in good faith.
    package static let maxCount = 32
    /// The size of a context's header: ContextType, DataLength, Reserved.
    static let headerSize = 8

    /// The ContextType.
    var type: UInt16 {
        switch self {
        case .preauthIntegrity: Self.preauthIntegrityType
        case .signing: Self.signingType
        case .other(let type, _): type
        }
    }

    /// Appends the contexts to `writer`, each starting 8-byte aligned as MS-SMB2 requires
    /// (the first must be aligned already, at the NegotiateContextOffset).
    static func encode(_ contexts: [SMB2NegotiateContext], into writer: inout SMB2MessageWriter) {
        for context in contexts {
            writer.align(to: 8)
            context.encode(into: &writer)
        }
    }

    private func encode(into writer: inout SMB2MessageWriter) {
        var data = SMB2MessageWriter()
        switch self {
        case .preauthIntegrity(let hashAlgorithms, let salt):
            data.append(UInt16(hashAlgorithms.count))
            data.append(UInt16(salt.count))
            for algorithm in hashAlgorithms { data.append(algorithm) }
            data.append(salt)
        case .signing(let algorithms):
            data.append(UInt16(algorithms.count))
            for algorithm in algorithms { data.append(algorithm) }
        case .other(_, let bytes):
            data.append(bytes)
        }
        writer.append(type)
        writer.append(UInt16(data.count))
        writer.append(UInt32(0))
        writer.append(data.bytes)
    }

    /// Decodes the `count` contexts of `message` starting at `offset` (from the start of
    /// the SMB2 header), each 8-byte aligned after the one before. Everything is checked
    /// before use: the offset lies at or past `minimumOffset` (the end of the fixed
    /// part) and is aligned, every context and its data lie within the message, there
    /// are at most ``maxCount``, and a known context's lists fit its data.
    ///
    /// - Throws: ``SMB2Error/malformed(_:)`` for anything out of place.
    package static func decodeList(from message: [UInt8], offset: Int, count: Int,
                           minimumOffset: Int) throws(SMB2Error) -> [SMB2NegotiateContext] {
        guard count <= maxCount else { throw .malformed("\(count) negotiate contexts (at most \(maxCount))") }
        guard count > 0 else { return [] }
        guard offset >= minimumOffset, offset % 8 == 0 else {
            throw .malformed("NegotiateContextOffset \(offset) (aligned, at or past \(minimumOffset))")
        }
        let reader = SMB2MessageReader(message)
        var contexts: [SMB2NegotiateContext] = []
        var position = offset
        for index in 0..<count {
            if index > 0 { position += (8 - position % 8) % 8 }
            let type = try reader.integer(UInt16.self, at: position)
            let length = Int(try reader.integer(UInt16.self, at: position + 2))
            let data = try reader.slice(at: position + headerSize, count: length)
            contexts.append(try decode(type: type, data: Array(data)))
            position += headerSize + length
        }
        return contexts
    }

    private static func decode(type: UInt16, data: [UInt8]) throws(SMB2Error) -> SMB2NegotiateContext {
        let reader = SMB2MessageReader(data)
        switch type {
        case preauthIntegrityType:
            let algorithmCount = Int(try reader.integer(UInt16.self, at: 0))
            let saltLength = Int(try reader.integer(UInt16.self, at: 2))
            guard algorithmCount > 0 else { throw .malformed("a preauth integrity context without a hash algorithm") }
            let algorithms = try (0..<algorithmCount).map { (index) throws(SMB2Error) in
                try reader.integer(UInt16.self, at: 4 + 2 * index)
            }
            let salt = Array(try reader.slice(at: 4 + 2 * algorithmCount, count: saltLength))
            return .preauthIntegrity(hashAlgorithms: algorithms, salt: salt)
        case signingType:
            let algorithmCount = Int(try reader.integer(UInt16.self, at: 0))
            guard algorithmCount > 0 else { throw .malformed("a signing context without an algorithm") }
            let algorithms = try (0..<algorithmCount).map { (index) throws(SMB2Error) in
                try reader.integer(UInt16.self, at: 2 + 2 * index)
            }
            return .signing(algorithms: algorithms)
        default:
            return .other(type: type, data: data)
        }
    }
}
