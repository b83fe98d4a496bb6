/// The body of a response that reports an error (MS-SMB2 2.2.2), without error contexts.
package enum SMB2ErrorResponse {
    package static func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(9))
        writer.appendZeros(7)
    }
}
