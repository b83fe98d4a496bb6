/// SMB2 CLOSE request and response bodies (MS-SMB2 2.2.15 and 2.2.16).
package struct SMB2CloseRequest {
    package var fileID: SMB2FileID

    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(24))
        writer.append(UInt16(0))
        writer.append(UInt32(0))
        fileID.encode(into: &writer)
    }

    package init(fileID: SMB2FileID) { self.fileID = fileID }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(24)
        fileID = try SMB2FileID(reading: reader, at: 72)
    }
}

/// The CLOSE response without attributes (its flags ask for none).
package enum SMB2CloseResponse {
    package static func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(60))
        writer.appendZeros(58)
    }

    package static func validate(_ message: [UInt8]) throws(SMB2Error) {
        try SMB2MessageReader(message).expectStructureSize(60)
    }
}
