/// Where `smbdirect-send` writes: `//host/share/path`.
public struct SMBDirectSendTarget: Hashable, Sendable, CustomStringConvertible {
    /// The server's name or address.
    public var host: String
    /// The share.
    public var share: String
    /// The file's path inside the share, with `/` between components.
    public var path: String

    public init(host: String, share: String, path: String) {
        self.host = host
        self.share = share
        self.path = path
    }

    /// Parses `//host/share/path` (backslashes work too).
    ///
    /// - Returns: `nil` unless there is a host, a share and a non-empty path.
    public init?(parsing text: String) {
        let normalized = String(text.map { $0 == "\\" ? "/" : $0 })
        guard normalized.hasPrefix("//") else { return nil }
        let parts = normalized.dropFirst(2).split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 3 else { return nil }
        self.init(host: parts[0], share: parts[1], path: parts[2...].joined(separator: "/"))
    }

    /// The share's UNC path for TREE_CONNECT: `\\host\share`.
    public var uncShare: String { "\\\\\(host)\\\(share)" }

    /// The file's name for CREATE: the path with backslashes.
    public var smbPath: String { String(path.map { $0 == "/" ? "\\" : $0 }) }

    public var description: String { "//\(host)/\(share)/\(path)" }
}
