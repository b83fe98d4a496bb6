/// SMB2 SESSION_SETUP request and response bodies (MS-SMB2 2.2.5 and 2.2.6), each
/// carrying a security token.
package struct SMB2SessionSetupRequest {
    package static let bufferOffset = SMB2Header.size + 24
    package var securityBlob: [UInt8]
    /// `SMB2_NEGOTIATE_SIGNING_ENABLED`, with `SMB2_NEGOTIATE_SIGNING_REQUIRED` when the
    /// client requires the session to sign.
    package var securityMode: UInt8

    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(25))
        writer.append(UInt8(0))
        writer.append(securityMode)
        writer.append(UInt32(0))
        writer.append(UInt32(0))
        writer.append(UInt16(Self.bufferOffset))
        writer.append(UInt16(securityBlob.count))
        writer.append(UInt64(0))
        writer.append(securityBlob)
    }

    package init(securityBlob: [UInt8], securityMode: UInt8 = UInt8(SMB2NegotiateRequest.signingEnabled)) {
        self.securityBlob = securityBlob
        self.securityMode = securityMode
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(25)
        securityMode = try reader.integer(UInt8.self, at: 67)
        let offset = Int(try reader.integer(UInt16.self, at: 76))
        let length = Int(try reader.integer(UInt16.self, at: 78))
        securityBlob = Array(try reader.slice(at: offset, count: length))
    }
}

package struct SMB2SessionSetupResponse {
    /// `SMB2_SESSION_FLAG_IS_GUEST` and `SMB2_SESSION_FLAG_IS_NULL`.
    package static let guestFlag: UInt16 = 0x0001
    package static let nullFlag: UInt16 = 0x0002
    package static let bufferOffset = SMB2Header.size + 8
    package var sessionFlags: UInt16
    package var securityBlob: [UInt8]

    package init(sessionFlags: UInt16, securityBlob: [UInt8]) {
        self.sessionFlags = sessionFlags
        self.securityBlob = securityBlob
    }

    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(9))
        writer.append(sessionFlags)
        writer.append(UInt16(securityBlob.isEmpty ? 0 : Self.bufferOffset))
        writer.append(UInt16(securityBlob.count))
        writer.append(securityBlob.isEmpty ? [0] : securityBlob)
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(9)
        sessionFlags = try reader.integer(UInt16.self, at: 66)
        let offset = Int(try reader.integer(UInt16.self, at: 68))
        let length = Int(try reader.integer(UInt16.self, at: 70))
        securityBlob = length == 0 ? [] : Array(try reader.slice(at: offset, count: length))
    }
}
