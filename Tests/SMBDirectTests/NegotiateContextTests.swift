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
}
