extension SMB2MessageWriter {
    /// Appends `descriptors` as a READ's or WRITE's channel information: one 16-byte
    /// SMB Direct Buffer Descriptor V1 after another (MS-SMB2 2.2.19, 2.2.21).
    package mutating func append(_ descriptors: [BufferDescriptorV1]) {
        var entry = [UInt8](repeating: 0, count: BufferDescriptorV1.size)
        for descriptor in descriptors {
            entry.withUnsafeMutableBytes { _ = descriptor.encode(into: $0) }
            append(entry)
        }
    }
}

extension SMB2MessageReader {
    /// Decodes the channel information of `count` bytes at `offset` as a list of buffer
    /// descriptors describing at most `maxTotalLength` bytes, and returns it with the
    /// bytes it describes.
    ///
    /// - Throws: ``SMB2Error/malformed(_:)`` when the list is outside the message, not a
    ///   whole number of descriptors, or describes too much.
    package func bufferDescriptors(at offset: Int, count: Int, maxTotalLength: Int)
        throws(SMB2Error) -> (descriptors: [BufferDescriptorV1], total: Int)
    {
        let info = try slice(at: offset, count: count)
        var list: [BufferDescriptorV1] = []
        do {
            let total = try Array(info).withUnsafeBytes { (bytes) throws(SMBDirectDecodingError) -> Int in
                try BufferDescriptorV1.decodeList(bytes, into: &list, maxTotalLength: maxTotalLength)
            }
            return (list, total)
        } catch {
            throw .malformed("\(error)")
        }
    }
}
