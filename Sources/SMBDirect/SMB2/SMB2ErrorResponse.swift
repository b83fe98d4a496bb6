/// The body of a response that reports an error (MS-SMB2 2.2.2), without error contexts.
enum SMB2ErrorResponse {
    static func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(9))
        writer.appendZeros(7)
    }
}
