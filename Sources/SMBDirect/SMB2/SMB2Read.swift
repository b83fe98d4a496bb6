/// SMB2 READ request and response bodies (MS-SMB2 2.2.19 and 2.2.20).
///
/// Inline (`SMB2_CHANNEL_NONE`), the data comes back in the response, at DataOffset,
/// DataLength bytes. Through the RDMA channel (`SMB2_CHANNEL_RDMA_V1`) the request
/// carries MS-SMBD buffer descriptors of the client's registered destination; the
/// server RDMA-WRITEs the data there before it answers, and the response has
/// DataLength 0 and DataRemaining the bytes written (MS-SMB2 3.3.5.12, as ksmbd and
/// Windows answer).
package struct SMB2ReadRequest {
    /// Where the channel information starts: the Buffer field, after the fixed part.
    package static let channelInfoOffset = SMB2Header.size + 48
    /// The Padding a client asks for: the data right after the response's fixed part.
    package static let responsePadding = UInt8(SMB2ReadResponse.dataOffset)

    package let fileID: SMB2FileID
    package let offset: UInt64
    /// The bytes asked for (Length).
    package let length: Int
    /// The channel's buffer descriptors; empty for an inline read.
    package let descriptors: [BufferDescriptorV1]

    package init(fileID: SMB2FileID, offset: UInt64, length: Int, descriptors: [BufferDescriptorV1]) {
        precondition(descriptors.count <= SMB2WriteRequest.maxDescriptors,
                     "a READ carries at most \(SMB2WriteRequest.maxDescriptors) buffer descriptors")
        precondition((0...Int(UInt32.max)).contains(length), "a READ asks for at most 4 GiB")
        self.fileID = fileID
        self.offset = offset
        self.length = length
        self.descriptors = descriptors
    }

    package func encode(into writer: inout SMB2MessageWriter) {
        let isInline = descriptors.isEmpty
        writer.append(UInt16(49))
        writer.append(Self.responsePadding)
        writer.append(UInt8(0))
        writer.append(UInt32(length))
        writer.append(offset)
        fileID.encode(into: &writer)
        writer.append(UInt32(0))
        writer.append(isInline ? SMB2WriteRequest.channelNone : SMB2WriteRequest.channelRDMAV1)
        writer.append(UInt32(0))
        writer.append(UInt16(isInline ? 0 : Self.channelInfoOffset))
        writer.append(UInt16(descriptors.count * BufferDescriptorV1.size))
        guard !isInline else {
            // The Buffer field is at least one byte (StructureSize 49).
            writer.appendZeros(1)
            return
        }
        writer.append(descriptors)
    }

    /// Decodes a request. Length is checked against `maxTransferSize` before anything
    /// else is read past it; descriptors must lie within the message, each within the
    /// address space, and describe at least Length bytes in all.
    package init(decoding message: [UInt8], maxTransferSize: Int) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(49)
        length = Int(try reader.integer(UInt32.self, at: 68))
        guard length <= maxTransferSize else { throw .malformed("a READ of \(length) bytes (at most \(maxTransferSize))") }
        offset = try reader.integer(UInt64.self, at: 72)
        fileID = try SMB2FileID(reading: reader, at: 80)
        let channel = try reader.integer(UInt32.self, at: 100)
        let infoOffset = Int(try reader.integer(UInt16.self, at: 108))
        let infoLength = Int(try reader.integer(UInt16.self, at: 110))
        switch channel {
        case SMB2WriteRequest.channelNone:
            descriptors = []
        case SMB2WriteRequest.channelRDMAV1, SMB2WriteRequest.channelRDMAV1Invalidate:
            let (list, total) = try reader.bufferDescriptors(at: infoOffset, count: infoLength, maxTotalLength: maxTransferSize)
            guard total >= length else { throw .malformed("descriptors of \(total) bytes for a read of \(length)") }
            descriptors = list
        default:
            throw .malformed("unknown channel \(channel)")
        }
    }
}

/// The fixed part of a READ response and where its inline data is.
package struct SMB2ReadResponse {
    /// Where the data of an inline read starts: right after the fixed part.
    package static let dataOffset = SMB2Header.size + 16

    /// The bytes of inline data that follow (DataLength).
    package let dataLength: Int
    /// The bytes the server RDMA-wrote into the channel's buffers (DataRemaining).
    package let dataRemaining: Int
    /// Decoded responses: where the inline data is in the message.
    package var inlineData: Range<Int> = 0..<0

    package init(dataLength: Int, dataRemaining: Int) {
        self.dataLength = dataLength
        self.dataRemaining = dataRemaining
    }

    /// Appends the fixed part; an inline read's data is the caller's to append after it.
    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(17))
        writer.append(UInt8(Self.dataOffset))
        writer.append(UInt8(0))
        writer.append(UInt32(dataLength))
        writer.append(UInt32(dataRemaining))
        writer.append(UInt32(0))
        if dataLength == 0 { writer.appendZeros(1) }
    }

    /// Decodes a response, checking that DataOffset and DataLength lie within the message.
    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(17)
        let offset = Int(try reader.integer(UInt8.self, at: 66))
        dataLength = Int(try reader.integer(UInt32.self, at: 68))
        dataRemaining = Int(try reader.integer(UInt32.self, at: 72))
        if dataLength > 0 {
            guard offset >= Self.dataOffset else { throw .malformed("READ data at \(offset), inside the header or fixed part") }
            _ = try reader.slice(at: offset, count: dataLength)
            inlineData = offset..<offset + dataLength
        }
    }
}
