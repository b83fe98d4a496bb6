// Hooks for the package's tests that script an SMB2 peer: `package` access, so that tests
// exercise the real build instead of an `@testable` one. They expose what a scripted
// server reads from a request and writes back, not the codec's internal writer.
extension SMB2Header {
    /// The bytes of this header (the 64-byte SMB2 header, unsigned) followed by a WRITE
    /// response body that counts `count` bytes written: a whole response message, for a
    /// scripted server that claims more than the request carried.
    package func writeResponseForTesting(count: Int) -> [UInt8] {
        var writer = SMB2MessageWriter()
        encode(into: &writer)
        SMB2WriteResponse(count: count).encode(into: &writer)
        return writer.bytes
    }

    /// The data length of the WRITE request `message` (header included), or `nil` when
    /// it does not decode as one within `maxTransferSize`.
    package static func writeRequestLengthForTesting(_ message: [UInt8], maxTransferSize: Int) -> Int? {
        try? SMB2WriteRequest(decoding: message, maxTransferSize: maxTransferSize).length
    }

    /// The bytes of this header followed by a READ response body with DataOffset
    /// `dataOffset`, DataLength `dataLength` and DataRemaining `dataRemaining`, then
    /// `data`: a whole response message, for a scripted server that answers a READ as
    /// it likes (more than asked, data outside the message).
    package func readResponseForTesting(dataOffset: UInt8 = UInt8(SMB2ReadResponse.dataOffset), dataLength: Int,
                                        dataRemaining: Int, data: [UInt8] = []) -> [UInt8] {
        var writer = SMB2MessageWriter()
        encode(into: &writer)
        SMB2ReadResponse(dataLength: dataLength, dataRemaining: dataRemaining).encode(into: &writer)
        writer.set(dataOffset, at: SMB2Header.size + 2)
        writer.append(data)
        return writer.bytes
    }

    /// The length (bytes asked for) and buffer descriptors of the READ request
    /// `message` (header included), or `nil` when it does not decode as one within
    /// `maxTransferSize`.
    package static func readRequestForTesting(_ message: [UInt8],
                                              maxTransferSize: Int) -> (length: Int, descriptors: [BufferDescriptorV1])? {
        (try? SMB2ReadRequest(decoding: message, maxTransferSize: maxTransferSize)).map { ($0.length, $0.descriptors) }
    }
}

extension SMB2NegotiateContext {
    /// The bytes of `contexts` as a NEGOTIATE carries them, from an 8-byte aligned
    /// start: input for tests of ``decodeList(from:offset:count:minimumOffset:)``.
    package static func encodedForTesting(_ contexts: [SMB2NegotiateContext]) -> [UInt8] {
        var writer = SMB2MessageWriter()
        encode(contexts, into: &writer)
        return writer.bytes
    }
}
