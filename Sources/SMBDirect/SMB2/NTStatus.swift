/// An NTSTATUS value (MS-ERREF 2.3), as SMB2 responses carry it.
public struct NTStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 32-bit value: severity in the top two bits, then the facility and the code.
    public var rawValue: UInt32
    /// The status with value `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `STATUS_SUCCESS`: the request succeeded.
    public static let success = NTStatus(rawValue: 0x0000_0000)
    /// `STATUS_PENDING`: an interim response; the operation goes on and its final
    /// response follows, with the same MessageId (MS-SMB2 3.3.4.2).
    public static let pending = NTStatus(rawValue: 0x0000_0103)
    /// `STATUS_MORE_PROCESSING_REQUIRED`: the session setup needs another round trip.
    public static let moreProcessingRequired = NTStatus(rawValue: 0xC000_0016)
    /// `STATUS_INVALID_HANDLE`: the file ID names no open file.
    public static let invalidHandle = NTStatus(rawValue: 0xC000_0008)
    /// `STATUS_END_OF_FILE`: a READ starts at or past the end of the file.
    public static let endOfFile = NTStatus(rawValue: 0xC000_0011)
    /// `STATUS_INVALID_PARAMETER`: a field of the request is invalid.
    public static let invalidParameter = NTStatus(rawValue: 0xC000_000D)
    /// `STATUS_ACCESS_DENIED`: the user may not do what the request asks.
    public static let accessDenied = NTStatus(rawValue: 0xC000_0022)
    /// `STATUS_OBJECT_NAME_INVALID`: the file name is not a valid name.
    public static let objectNameInvalid = NTStatus(rawValue: 0xC000_0033)
    /// `STATUS_OBJECT_NAME_NOT_FOUND`: the file does not exist.
    public static let objectNameNotFound = NTStatus(rawValue: 0xC000_0034)
    /// `STATUS_OBJECT_PATH_NOT_FOUND`: a directory on the file's path does not exist.
    public static let objectPathNotFound = NTStatus(rawValue: 0xC000_003A)
    /// `STATUS_LOGON_FAILURE`: the user name or password is wrong.
    public static let logonFailure = NTStatus(rawValue: 0xC000_006D)
    /// `STATUS_NOT_SUPPORTED`: the server does not support the request.
    public static let notSupported = NTStatus(rawValue: 0xC000_00BB)
    /// `STATUS_BAD_NETWORK_NAME`: the share does not exist.
    public static let badNetworkName = NTStatus(rawValue: 0xC000_00CC)
    /// `STATUS_REQUEST_NOT_ACCEPTED`: the server takes no more connections or sessions.
    public static let requestNotAccepted = NTStatus(rawValue: 0xC000_00D0)
    /// `STATUS_FILE_CLOSED`: the file was closed.
    public static let fileClosed = NTStatus(rawValue: 0xC000_0128)
    /// `STATUS_TOO_MANY_OPENED_FILES`: the server has no room for another open file.
    public static let tooManyOpenedFiles = NTStatus(rawValue: 0xC000_011F)
    /// `STATUS_USER_SESSION_DELETED`: the session no longer exists.
    public static let userSessionDeleted = NTStatus(rawValue: 0xC000_0203)
    /// `STATUS_NETWORK_NAME_DELETED`: the tree connection no longer exists.
    public static let networkNameDeleted = NTStatus(rawValue: 0xC000_00C9)
    /// `STATUS_DISK_FULL`: the disk has no room for the data.
    public static let diskFull = NTStatus(rawValue: 0xC000_007F)

    /// Whether the value reports an error (severity 3).
    public var isError: Bool { rawValue >> 30 == 3 }

    /// The value in hexadecimal, as `0xC0000022`.
    public var description: String { "0x" + String(rawValue, radix: 16, uppercase: true) }
}
