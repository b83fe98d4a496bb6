/// SMB2 NEGOTIATE request and response bodies (MS-SMB2 2.2.3 and 2.2.4): this client
/// offers the 3.0, 3.0.2 and 3.1.1 dialects, and with 3.1.1 the negotiate contexts
/// that follow the dialects (request) or the security buffer (response).
package struct SMB2NegotiateRequest {
    package static let dialects: [UInt16] = [SMB3KeyDerivation.dialect300, SMB3KeyDerivation.dialect302, SMB3KeyDerivation.dialect311]
    /// `SMB2_NEGOTIATE_SIGNING_ENABLED`.
    package static let signingEnabled: UInt16 = 0x0001
    /// `SMB2_NEGOTIATE_SIGNING_REQUIRED`.
    package static let signingRequired: UInt16 = 0x0002
    /// Where the dialects start: after the header and the 36-byte fixed part.
    package static let dialectsOffset = SMB2Header.size + 36
    package var dialects: [UInt16]
    package var clientGUID: [UInt8]
    package var securityMode: UInt16
    package var contexts: [SMB2NegotiateContext]

    package func encode(into writer: inout SMB2MessageWriter) {
        let start = writer.count
        writer.append(UInt16(36))
        writer.append(UInt16(dialects.count))
        writer.append(securityMode)
        writer.append(UInt16(0))
        writer.append(UInt32(0))
        writer.append(clientGUID)
        // NegotiateContextOffset and NegotiateContextCount (3.1.1), else ClientStartTime.
        let contextOffsetField = writer.count
        writer.append(UInt32(0))
        writer.append(UInt16(contexts.count))
        writer.append(UInt16(0))
        for dialect in dialects { writer.append(dialect) }
        if !contexts.isEmpty {
            writer.align(to: 8)
            writer.set(UInt32(SMB2Header.size + writer.count - start), at: contextOffsetField)
            SMB2NegotiateContext.encode(contexts, into: &writer)
        }
    }

    package init(dialects: [UInt16] = Self.dialects, clientGUID: [UInt8], securityMode: UInt16 = signingEnabled,
         contexts: [SMB2NegotiateContext] = []) {
        precondition(clientGUID.count == 16, "a GUID has 16 bytes")
        self.dialects = dialects
        self.clientGUID = clientGUID
        self.securityMode = securityMode
        self.contexts = contexts
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(36)
        let count = Int(try reader.integer(UInt16.self, at: 66))
        guard count > 0 else { throw .malformed("a NEGOTIATE offers no dialect") }
        securityMode = try reader.integer(UInt16.self, at: 68)
        clientGUID = Array(try reader.slice(at: 76, count: 16))
        var dialects: [UInt16] = []
        for index in 0..<count { dialects.append(try reader.integer(UInt16.self, at: Self.dialectsOffset + 2 * index)) }
        self.dialects = dialects
        contexts = []
        if dialects.contains(SMB3KeyDerivation.dialect311) {
            contexts = try SMB2NegotiateContext.decodeList(
                from: message, offset: Int(try reader.integer(UInt32.self, at: 92)),
                count: Int(try reader.integer(UInt16.self, at: 96)), minimumOffset: Self.dialectsOffset + 2 * count)
        }
    }
}

package struct SMB2NegotiateResponse {
    /// Where the security buffer starts: after the header and the 64-byte fixed part.
    package static let bufferOffset = SMB2Header.size + 64
    package var dialect: UInt16
    package var securityMode: UInt16
    package var serverGUID: [UInt8]
    package var maxTransactSize: UInt32
    package var maxReadSize: UInt32
    package var maxWriteSize: UInt32
    package var contexts: [SMB2NegotiateContext]

    package init(dialect: UInt16, securityMode: UInt16, serverGUID: [UInt8], maxTransactSize: UInt32, maxReadSize: UInt32,
         maxWriteSize: UInt32, contexts: [SMB2NegotiateContext] = []) {
        self.dialect = dialect
        self.securityMode = securityMode
        self.serverGUID = serverGUID
        self.maxTransactSize = maxTransactSize
        self.maxReadSize = maxReadSize
        self.maxWriteSize = maxWriteSize
        self.contexts = contexts
    }

    package func encode(into writer: inout SMB2MessageWriter) {
        let start = writer.count
        writer.append(UInt16(65))
        writer.append(securityMode)
        writer.append(dialect)
        writer.append(UInt16(contexts.count))
        writer.append(serverGUID)
        writer.append(UInt32(0))
        writer.append(maxTransactSize)
        writer.append(maxReadSize)
        writer.append(maxWriteSize)
        writer.append(UInt64(0))
        writer.append(UInt64(0))
        writer.append(UInt16(Self.bufferOffset))
        writer.append(UInt16(0))
        let contextOffsetField = writer.count
        writer.append(UInt32(0))
        if contexts.isEmpty {
            writer.appendZeros(1)
        } else {
            writer.align(to: 8)
            writer.set(UInt32(SMB2Header.size + writer.count - start), at: contextOffsetField)
            SMB2NegotiateContext.encode(contexts, into: &writer)
        }
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(65)
        securityMode = try reader.integer(UInt16.self, at: 66)
        dialect = try reader.integer(UInt16.self, at: 68)
        serverGUID = Array(try reader.slice(at: 72, count: 16))
        maxTransactSize = try reader.integer(UInt32.self, at: 92)
        maxReadSize = try reader.integer(UInt32.self, at: 96)
        maxWriteSize = try reader.integer(UInt32.self, at: 100)
        contexts = []
        if dialect == SMB3KeyDerivation.dialect311 {
            let bufferEnd = Int(try reader.integer(UInt16.self, at: 120)) + Int(try reader.integer(UInt16.self, at: 122))
            contexts = try SMB2NegotiateContext.decodeList(
                from: message, offset: Int(try reader.integer(UInt32.self, at: 124)),
                count: Int(try reader.integer(UInt16.self, at: 70)), minimumOffset: max(Self.bufferOffset, bufferEnd))
        }
    }
}
