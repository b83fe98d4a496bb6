/// SMB2 WRITE request and response bodies (MS-SMB2 2.2.21 and 2.2.22).
///
/// Inline, the data follows the request in the same upper-layer message. Through
/// the RDMA channel (`SMB2_CHANNEL_RDMA_V1`) the request carries MS-SMBD buffer
/// descriptors instead, Length and DataOffset are 0 and RemainingBytes is the
/// length; the server pulls the data by RDMA READ.
package struct SMB2WriteRequest {
    /// The fixed part's size; inline data and channel information start after it.
    package static let dataOffset = SMB2Header.size + 48
    /// `SMB2_CHANNEL_NONE`, `SMB2_CHANNEL_RDMA_V1`, `SMB2_CHANNEL_RDMA_V1_INVALIDATE`.
    package static let channelNone: UInt32 = 0
    package static let channelRDMAV1: UInt32 = 1
    package static let channelRDMAV1Invalidate: UInt32 = 2
    /// The most buffer descriptors a request carries: the channel information's length is 16 bits.
    package static let maxDescriptors = Int(UInt16.max) / BufferDescriptorV1.size

    package let fileID: SMB2FileID
    package let offset: UInt64
    /// The bytes to write: inline, the data's length; through the channel, RemainingBytes.
    package let length: Int
    /// The channel's buffer descriptors (at most ``maxDescriptors``); empty for an inline write.
    package let descriptors: [BufferDescriptorV1]
    /// Decoded requests: where an inline write's data is in the message.
    package var inlineData: Range<Int> = 0..<0

    package init(fileID: SMB2FileID, offset: UInt64, length: Int, descriptors: [BufferDescriptorV1]) {
        precondition(descriptors.count <= Self.maxDescriptors, "a WRITE carries at most \(Self.maxDescriptors) buffer descriptors")
        precondition((0...Int(UInt32.max)).contains(length), "a WRITE carries at most 4 GiB")
        self.fileID = fileID
        self.offset = offset
        self.length = length
        self.descriptors = descriptors
    }

    /// Appends the body; an inline write's data is the caller's to send after it.
    package func encode(into writer: inout SMB2MessageWriter) {
        let isInline = descriptors.isEmpty
        writer.append(UInt16(49))
        writer.append(UInt16(isInline ? Self.dataOffset : 0))
        writer.append(UInt32(isInline ? length : 0))
        writer.append(offset)
        fileID.encode(into: &writer)
        writer.append(isInline ? Self.channelNone : Self.channelRDMAV1)
        writer.append(UInt32(isInline ? 0 : length))
        writer.append(UInt16(isInline ? 0 : Self.dataOffset))
        writer.append(UInt16(descriptors.count * BufferDescriptorV1.size))
        writer.append(UInt32(0))
        writer.append(descriptors)
    }

    /// Decodes a request, checking that inline data or descriptors are within the message and `maxTransferSize`.
    package init(decoding message: [UInt8], maxTransferSize: Int) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(49)
        let dataOffset = Int(try reader.integer(UInt16.self, at: 66))
        let dataLength = Int(try reader.integer(UInt32.self, at: 68))
        offset = try reader.integer(UInt64.self, at: 72)
        fileID = try SMB2FileID(reading: reader, at: 80)
        let channel = try reader.integer(UInt32.self, at: 96)
        let remaining = Int(try reader.integer(UInt32.self, at: 100))
        let infoOffset = Int(try reader.integer(UInt16.self, at: 104))
        let infoLength = Int(try reader.integer(UInt16.self, at: 106))
        switch channel {
        case Self.channelNone:
            _ = try reader.slice(at: dataOffset, count: dataLength)
            inlineData = dataOffset..<dataOffset + dataLength
            length = dataLength
            descriptors = []
        case Self.channelRDMAV1, Self.channelRDMAV1Invalidate:
            guard dataLength == 0, dataOffset == 0 else { throw .malformed("an RDMA-channel WRITE with inline data") }
            let (list, total) = try reader.bufferDescriptors(at: infoOffset, count: infoLength, maxTotalLength: maxTransferSize)
            guard total == remaining else { throw .malformed("descriptors of \(total) bytes for a write of \(remaining)") }
            length = remaining
            descriptors = list
        default:
            throw .malformed("unknown channel \(channel)")
        }
    }
}

package struct SMB2WriteResponse {
    package var count: Int

    package init(count: Int) { self.count = count }

    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(17))
        writer.append(UInt16(0))
        writer.append(UInt32(count))
        writer.append(UInt32(0))
        writer.append(UInt16(0))
        writer.append(UInt16(0))
        writer.appendZeros(1)
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(17)
        count = Int(try reader.integer(UInt32.self, at: 68))
    }
}
