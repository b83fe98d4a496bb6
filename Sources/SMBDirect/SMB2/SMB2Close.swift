/// SMB2 CLOSE request and response bodies (MS-SMB2 2.2.15 and 2.2.16).
struct SMB2CloseRequest {
    var fileID: SMB2FileID

    func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(24))
        writer.append(UInt16(0))
        writer.append(UInt32(0))
        fileID.encode(into: &writer)
    }

    init(fileID: SMB2FileID) { self.fileID = fileID }

    init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(24)
        fileID = try SMB2FileID(reading: reader, at: 72)
    }
}

/// The CLOSE response without attributes (its flags ask for none).
enum SMB2CloseResponse {
    static func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(60))
        writer.appendZeros(58)
    }

    static func validate(_ message: [UInt8]) throws(SMB2Error) {
        try SMB2MessageReader(message).expectStructureSize(60)
    }
}
