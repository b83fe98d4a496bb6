/// SMB2 NEGOTIATE request and response bodies (MS-SMB2 2.2.3 and 2.2.4), without
/// negotiate contexts: this client offers the 3.0 and 3.0.2 dialects.
struct SMB2NegotiateRequest {
    static let dialects: [UInt16] = [0x0300, 0x0302]
    /// `SMB2_NEGOTIATE_SIGNING_ENABLED`.
    static let signingEnabled: UInt16 = 0x0001
    var dialects: [UInt16]
    var clientGUID: [UInt8]

    func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(36))
        writer.append(UInt16(dialects.count))
        writer.append(Self.signingEnabled)
        writer.append(UInt16(0))
        writer.append(UInt32(0))
        writer.append(clientGUID)
        writer.append(UInt64(0))
        for dialect in dialects { writer.append(dialect) }
    }

    init(dialects: [UInt16] = Self.dialects, clientGUID: [UInt8]) {
        precondition(clientGUID.count == 16, "a GUID has 16 bytes")
        self.dialects = dialects
        self.clientGUID = clientGUID
    }

    init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(36)
        let count = Int(try reader.integer(UInt16.self, at: 66))
        guard count > 0 else { throw .malformed("a NEGOTIATE offers no dialect") }
        clientGUID = Array(try reader.slice(at: 76, count: 16))
        var dialects: [UInt16] = []
        for index in 0..<count { dialects.append(try reader.integer(UInt16.self, at: 100 + 2 * index)) }
        self.dialects = dialects
    }
}

struct SMB2NegotiateResponse {
    var dialect: UInt16
    var serverGUID: [UInt8]
    var maxTransactSize: UInt32
    var maxReadSize: UInt32
    var maxWriteSize: UInt32

    init(dialect: UInt16, serverGUID: [UInt8], maxTransactSize: UInt32, maxReadSize: UInt32, maxWriteSize: UInt32) {
        self.dialect = dialect
        self.serverGUID = serverGUID
        self.maxTransactSize = maxTransactSize
        self.maxReadSize = maxReadSize
        self.maxWriteSize = maxWriteSize
    }

    func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(65))
        writer.append(SMB2NegotiateRequest.signingEnabled)
        writer.append(dialect)
        writer.append(UInt16(0))
        writer.append(serverGUID)
        writer.append(UInt32(0))
        writer.append(maxTransactSize)
        writer.append(maxReadSize)
        writer.append(maxWriteSize)
        writer.append(UInt64(0))
        writer.append(UInt64(0))
        writer.append(UInt16(SMB2Header.size + 64))
        writer.append(UInt16(0))
        writer.append(UInt32(0))
        writer.appendZeros(1)
    }

    init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(65)
        dialect = try reader.integer(UInt16.self, at: 68)
        serverGUID = Array(try reader.slice(at: 72, count: 16))
        maxTransactSize = try reader.integer(UInt32.self, at: 92)
        maxReadSize = try reader.integer(UInt32.self, at: 96)
        maxWriteSize = try reader.integer(UInt32.self, at: 100)
    }
}
