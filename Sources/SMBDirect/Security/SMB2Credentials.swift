/// A user name, its domain and its password, for an NTLMv2 session setup. The password is
/// kept out of every description, debug description and mirror, so logging or `dump`ing
/// credentials never shows it.
public struct SMB2Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The user name, as the server knows it.
    public let user: String
    /// The user's domain; empty for an account local to the server.
    public let domain: String
    /// The password, which only the NTLM computations read.
    package let password: String

    /// Credentials of `user` in `domain` (empty: the server's own accounts) with `password`.
    public init(user: String, domain: String = "", password: String) {
        self.user = user
        self.domain = domain
        self.password = password
    }

    /// Credentials for a name written `DOMAIN\user` (the domain is everything before the
    /// first backslash) or a bare `user` (no domain).
    public init(qualifiedUser: String, password: String) {
        if let separator = qualifiedUser.firstIndex(of: "\\") {
            self.init(user: String(qualifiedUser[qualifiedUser.index(after: separator)...]),
                      domain: String(qualifiedUser[..<separator]), password: password)
        } else {
            self.init(user: qualifiedUser, password: password)
        }
    }

    /// `DOMAIN\user`, or `user` without a domain.
    public var qualifiedUser: String { domain.isEmpty ? user : "\(domain)\\\(user)" }

    /// `SMB2Credentials(user: "DOMAIN\\user", password: <redacted>)`.
    public var description: String {
        "SMB2Credentials(user: \(String(reflecting: qualifiedUser)), password: <redacted>)"
    }

    /// The same as ``description``: the password is redacted here too.
    public var debugDescription: String { description }

    /// The user and domain, and a redacted password, for `dump` and debuggers.
    public var customMirror: Mirror {
        Mirror(self, children: ["user": user, "domain": domain, "password": "<redacted>"], displayStyle: .struct)
    }
}
