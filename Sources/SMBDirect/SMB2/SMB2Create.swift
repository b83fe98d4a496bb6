/// An open file's identifier (MS-SMB2 2.2.14.1 SMB2_FILEID).
public struct SMB2FileID: Hashable, Sendable {
    /// The part that stays the same when an open is reconnected (`Persistent`).
    public var persistent: UInt64
    /// The part the server may change when an open is reconnected (`Volatile`).
    public var volatile: UInt64

    /// The file ID with the given persistent and volatile parts.
    public init(persistent: UInt64, volatile: UInt64) {
        self.persistent = persistent
        self.volatile = volatile
    }

    func encode(into writer: inout SMB2MessageWriter) {
        writer.append(persistent)
        writer.append(volatile)
    }

    init(reading reader: SMB2MessageReader, at offset: Int) throws(SMB2Error) {
        persistent = try reader.integer(UInt64.self, at: offset)
        volatile = try reader.integer(UInt64.self, at: offset + 8)
    }
}

/// SMB2 CREATE request and response bodies (MS-SMB2 2.2.13 and 2.2.14) for the two
/// opens this client makes: a file to write, created or truncated, and an existing
/// file to read.
package struct SMB2CreateRequest {
    package static let nameOffset = SMB2Header.size + 56
    /// `GENERIC_WRITE | FILE_READ_ATTRIBUTES`.
    package static let writeAccess: UInt32 = 0x4000_0000 | 0x0000_0080
    /// `GENERIC_READ | FILE_READ_ATTRIBUTES`.
    package static let readAccess: UInt32 = 0x8000_0000 | 0x0000_0080
    /// `FILE_OPEN`: open the file if it exists, fail otherwise.
    package static let open: UInt32 = 1
    /// `FILE_OVERWRITE_IF`.
    package static let overwriteIf: UInt32 = 5
    /// `FILE_NON_DIRECTORY_FILE`.
    package static let nonDirectoryFile: UInt32 = 0x0000_0040
    /// The path relative to the share, with backslashes: at most 32,767 UTF-16 units.
    package let name: String
    package var createDisposition: UInt32 = SMB2CreateRequest.overwriteIf
    package var desiredAccess: UInt32 = SMB2CreateRequest.writeAccess

    /// - Throws: ``SMB2Error/invalidArgument(_:)`` for a name longer than 32,767 UTF-16 units.
    package init(name: String) throws(SMB2Error) {
        try checkNameLength(name, of: "a file name")
        self.name = name
    }

    package func encode(into writer: inout SMB2MessageWriter) {
        let encoded = utf16LittleEndian(name)
        writer.append(UInt16(57))
        writer.append(UInt8(0))
        writer.append(UInt8(0))
        writer.append(UInt32(2))
        writer.append(UInt64(0))
        writer.append(UInt64(0))
        writer.append(desiredAccess)
        writer.append(UInt32(0x80))
        writer.append(UInt32(0x3))
        writer.append(createDisposition)
        writer.append(Self.nonDirectoryFile)
        writer.append(UInt16(Self.nameOffset))
        writer.append(UInt16(encoded.count))
        writer.append(UInt32(0))
        writer.append(UInt32(0))
        writer.append(encoded.isEmpty ? [0] : encoded)
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(57)
        desiredAccess = try reader.integer(UInt32.self, at: 88)
        createDisposition = try reader.integer(UInt32.self, at: 100)
        let offset = Int(try reader.integer(UInt16.self, at: 108))
        let length = Int(try reader.integer(UInt16.self, at: 110))
        name = try string(fromUTF16LittleEndian: reader.slice(at: offset, count: length))
    }
}

package struct SMB2CreateResponse {
    /// `FILE_CREATED` and `FILE_OVERWRITTEN`.
    package static let created: UInt32 = 2
    package static let overwritten: UInt32 = 3
    /// `FILE_OPENED`.
    package static let opened: UInt32 = 1
    package var createAction: UInt32
    package var fileID: SMB2FileID
    /// The file's size (EndofFile).
    package var endOfFile: UInt64

    package init(createAction: UInt32, fileID: SMB2FileID, endOfFile: UInt64 = 0) {
        self.createAction = createAction
        self.fileID = fileID
        self.endOfFile = endOfFile
    }

    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(UInt16(89))
        writer.append(UInt8(0))
        writer.append(UInt8(0))
        writer.append(createAction)
        writer.appendZeros(40)
        writer.append(endOfFile)
        writer.append(UInt32(0x80))
        writer.append(UInt32(0))
        fileID.encode(into: &writer)
        writer.append(UInt32(0))
        writer.append(UInt32(0))
        writer.appendZeros(1)
    }

    package init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        try reader.expectStructureSize(89)
        createAction = try reader.integer(UInt32.self, at: 68)
        endOfFile = try reader.integer(UInt64.self, at: 112)
        fileID = try SMB2FileID(reading: reader, at: 128)
    }
}
