#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SMBDirect

/// Why `smbdirect-send` failed.
public enum SMBDirectSendError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read (or the copy could not be read back): the `errno`.
    case unreadableFile(String, errno: Int32)
    /// The file read from the server could not be written: the `errno`.
    case unwritableFile(String, errno: Int32)
    /// The SMB2 exchange failed.
    case smb(SMB2Error)
    /// The copy differs from the file, first at `offset`.
    case mismatch(path: String, offset: Int)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let code): "cannot read \(path): \(String(cString: strerror(code)))"
        case .unwritableFile(let path, let code): "cannot write \(path): \(String(cString: strerror(code)))"
        case .smb(let error): "\(error)"
        case .mismatch(let path, let offset): "\(path) differs from the source at byte \(offset)"
        }
    }
}
