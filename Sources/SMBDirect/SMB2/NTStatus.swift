/// An NTSTATUS value (MS-ERREF 2.3), as SMB2 responses carry it.
public struct NTStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let success = NTStatus(rawValue: 0x0000_0000)
    public static let moreProcessingRequired = NTStatus(rawValue: 0xC000_0016)
    public static let invalidHandle = NTStatus(rawValue: 0xC000_0008)
    public static let invalidParameter = NTStatus(rawValue: 0xC000_000D)
    public static let accessDenied = NTStatus(rawValue: 0xC000_0022)
    public static let objectNameInvalid = NTStatus(rawValue: 0xC000_0033)
    public static let objectPathNotFound = NTStatus(rawValue: 0xC000_003A)
    public static let logonFailure = NTStatus(rawValue: 0xC000_006D)
    public static let notSupported = NTStatus(rawValue: 0xC000_00BB)
    public static let badNetworkName = NTStatus(rawValue: 0xC000_00CC)
    public static let requestNotAccepted = NTStatus(rawValue: 0xC000_00D0)
    public static let fileClosed = NTStatus(rawValue: 0xC000_0128)
    public static let tooManyOpenedFiles = NTStatus(rawValue: 0xC000_011F)
    public static let userSessionDeleted = NTStatus(rawValue: 0xC000_0203)
    public static let networkNameDeleted = NTStatus(rawValue: 0xC000_00C9)
    public static let diskFull = NTStatus(rawValue: 0xC000_007F)

    /// Whether the value reports an error (severity 3).
    public var isError: Bool { rawValue >> 30 == 3 }

    public var description: String { "0x" + String(rawValue, radix: 16, uppercase: true) }
}
