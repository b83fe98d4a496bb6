/// SMB2 TREE_CONNECT request and response bodies (MS-SMB2 2.2.9 and 2.2.10).
package struct SMB2TreeConnectRequest {
    package static let pathOffset = SMB2Header.size + 8
    /// The share's UNC path, `\\server\share`: at most 32,767 UTF-16 units.
    package let path: String

    package func encode(into writer: inout SMB2MessageWriter) {
        let name = utf16LittleEndian(path)
        writer.append(UInt16(9))
        writer.append(UInt16(0))
        writer.append(UInt16(Self.pathOffset))
        writer.append(UInt16(name.count))
        writer.append(name)
    }

    /// - Throws: ``SMB2Error/invalidArgument(_:)`` for a path longer than 32,767 UTF-16 units.
    package init(path: String) throws(SMB2Error) {
        try checkNameLength(path, of: "a share path")
        self.path = path
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(9)
        let offset = Int(try reader.integer(UInt16.self, at: 68))
        let length = Int(try reader.integer(UInt16.self, at: 70))
        path = try string(fromUTF16LittleEndian: reader.slice(at: offset, count: length))
    }
}

package struct SMB2TreeConnectResponse {
    /// `SMB2_SHARE_TYPE_DISK`.
    package static let diskShare: UInt8 = 0x01
    package var shareType: UInt8
    package var maximalAccess: UInt32

    package init(shareType: UInt8, maximalAccess: UInt32) {
        self.shareType = shareType
        self.maximalAccess = maximalAccess
    }

    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(16))
        writer.append(shareType)
        writer.append(UInt8(0))
        writer.append(UInt32(0))
        writer.append(UInt32(0))
        writer.append(maximalAccess)
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(16)
        shareType = try reader.integer(UInt8.self, at: 66)
        maximalAccess = try reader.integer(UInt32.self, at: 76)
    }
}

/// Throws ``SMB2Error/invalidArgument(_:)`` unless `name` (`what`, for the message)
/// fits a name field, whose length is a 16-bit byte count: 32,767 UTF-16 units.
func checkNameLength(_ name: String, of what: String) throws(SMB2Error) {
    let units = name.utf16.count
    guard units <= Int(UInt16.max) / 2 else {
        throw .invalidArgument("\(what) of \(units) UTF-16 units (a name holds at most 32,767)")
    }
}

/// `string` as UTF-16LE bytes without a terminator, as SMB2 carries names and NTLM
/// (MS-NLMP's "Unicode") its user, domain and target names.
package func utf16LittleEndian(_ string: String) -> [UInt8] {
    string.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
}

/// The string that UTF-16LE `bytes` encode.
func string(fromUTF16LittleEndian bytes: ArraySlice<UInt8>) throws(SMB2Error) -> String {
    guard bytes.count % 2 == 0 else { throw .malformed("a UTF-16 name of \(bytes.count) bytes") }
    var units: [UInt16] = []
    units.reserveCapacity(bytes.count / 2)
    var index = bytes.startIndex
    while index < bytes.endIndex {
        units.append(UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8)
        index += 2
    }
    return String(decoding: units, as: UTF16.self)
}
