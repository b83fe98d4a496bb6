import SMBDirect
import Testing

/// SMB 3.1.1 negotiate contexts (issue 20): what this package encodes decodes back,
/// and a peer's list is checked before anything in it is used.
@Suite("SMB2 negotiate contexts")
struct NegotiateContextTests {
    static let contexts: [SMB2NegotiateContext] = [
        .preauthIntegrity(hashAlgorithms: [SMB2NegotiateContext.sha512], salt: Array(0..<32)),
        .signing(algorithms: [1, 0, 2]),
        .other(type: 0x0002, data: [1, 0, 1, 0, 2, 0, 1]),
    ]

    @Test("contexts round-trip, each 8-byte aligned after the one before")
    func roundTrip() throws {
        let bytes = SMB2NegotiateContext.encodedForTesting(Self.contexts)
        // 8 + 38, padded to 48; 8 + 8 = 16; 8 + 7.
        #expect(bytes.count == 48 + 16 + 15)
        #expect(bytes[48] == 0x08 && bytes[64] == 0x02)
        let decoded = try SMB2NegotiateContext.decodeList(from: bytes, offset: 0, count: 3, minimumOffset: 0)
        #expect(decoded == Self.contexts)
        let message = [UInt8](repeating: 0, count: 104) + bytes
        #expect(try SMB2NegotiateContext.decodeList(from: message, offset: 104, count: 3, minimumOffset: 100) == Self.contexts)
    }

    /// `bytes` with the little-endian 16-bit `value` at `offset`.
    func setting(_ value: UInt16, at offset: Int, in bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        bytes[offset] = UInt8(truncatingIfNeeded: value)
        bytes[offset + 1] = UInt8(value >> 8)
        return bytes
    }

    @Test("a hostile list is refused with a typed error",
          arguments: [
              ("more contexts than any peer needs", 0, 33, 0, nil),
              ("an offset inside the fixed part", 0, 3, 8, nil),
              ("an unaligned offset", 4, 3, 0, nil),
              ("a count past the contexts there are", 0, 4, 0, nil),
              ("a DataLength past the end", 0, 3, 0, (66, 0xFFFF)),
              ("a preauth context without a hash algorithm", 0, 1, 0, (8, 0)),
              ("a preauth salt past its data", 0, 1, 0, (10, 200)),
              ("a preauth algorithm count past its data", 0, 1, 0, (8, 40)),
              ("a signing context without an algorithm", 0, 2, 0, (56, 0)),
              ("a signing algorithm count past its data", 0, 2, 0, (56, 9)),
          ] as [(String, Int, Int, Int, (Int, UInt16)?)])
    func hostile(_ what: String, offset: Int, count: Int, minimumOffset: Int, change: (Int, UInt16)?) throws {
        var bytes = SMB2NegotiateContext.encodedForTesting(Self.contexts)
        if let (at, value) = change { bytes = setting(value, at: at, in: bytes) }
        if offset > 0 { bytes = [UInt8](repeating: 0, count: offset) + bytes }
        let error = #expect(throws: SMB2Error.self, "\(what)") {
            try SMB2NegotiateContext.decodeList(from: bytes, offset: offset, count: count, minimumOffset: minimumOffset)
        }
        guard case .malformed = error else {
            Issue.record("\(what): \(String(describing: error)), expected malformed")
            return
        }
    }

    /// A NEGOTIATE response choosing `dialect` with `contexts`, to `header`'s request.
    static func negotiateResponse(to header: SMB2Header, dialect: UInt16 = 0x0311,
                                  contexts: [SMB2NegotiateContext]) -> [UInt8] {
        var writer = SMB2MessageWriter()
        SMB2BadInputTests.ScriptedServer.responseHeader(to: header).encode(into: &writer)
        SMB2NegotiateResponse(dialect: dialect, securityMode: 1, serverGUID: [UInt8](repeating: 1, count: 16),
                              maxTransactSize: 1 << 20, maxReadSize: 1 << 20, maxWriteSize: 1 << 20, contexts: contexts)
            .encode(into: &writer)
        return writer.bytes
    }

    static let preauth = SMB2NegotiateContext.preauthIntegrity(hashAlgorithms: [SMB2NegotiateContext.sha512],
                                                               salt: Array(0..<32))

    @Test("a NEGOTIATE response whose contexts do not answer the offer is refused, and the client stays unnegotiated",
          arguments: [
              ("no preauth integrity context", 0x0311, [SMB2NegotiateContext.signing(algorithms: [1])]),
              ("a hash algorithm not offered", 0x0311, [.preauthIntegrity(hashAlgorithms: [2], salt: [])]),
              ("two preauth integrity contexts", 0x0311, [preauth, preauth]),
              ("a signing algorithm not offered (AES-GMAC)", 0x0311, [preauth, .signing(algorithms: [2])]),
              ("two signing algorithms", 0x0311, [preauth, .signing(algorithms: [1, 0])]),
              ("two signing contexts", 0x0311, [preauth, .signing(algorithms: [1]), .signing(algorithms: [1])]),
              ("a dialect not offered", 0x0210, [preauth]),
          ] as [(String, UInt16, [SMB2NegotiateContext])])
    func refusedNegotiation(_ what: String, dialect: UInt16, contexts: [SMB2NegotiateContext]) throws {
        let server = try SMB2BadInputTests.ScriptedServer { header, _ in
            Self.negotiateResponse(to: header, dialect: dialect, contexts: contexts)
        }
        let error = #expect(throws: SMB2Error.self, "\(what)") { try server.client.negotiate() }
        switch error {
        case .unexpectedResponse?, .unsupportedDialect?: break
        default: Issue.record("\(what): \(String(describing: error))")
        }
        #expect(server.client.dialect == 0, "\(what)")
        #expect(!server.client.serverRequiresSigning)
        try server.transport.close()
    }

    @Test("a NEGOTIATE response with the contexts offered, and others, is accepted")
    func acceptedNegotiation() throws {
        let server = try SMB2BadInputTests.ScriptedServer { header, _ in
            Self.negotiateResponse(to: header, contexts: [.other(type: 0x0002, data: [1, 0, 2, 0]), Self.preauth,
                                                          .signing(algorithms: [1])])
        }
        try server.client.negotiate()
        #expect(server.client.dialect == 0x0311)
        try server.transport.close()
    }
}
