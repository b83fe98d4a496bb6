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
}
