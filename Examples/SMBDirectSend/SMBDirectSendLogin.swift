import SMBDirect

/// Whom a run's session is for and whether it must sign: what `smbdirect-send`'s
/// `--user`, `--password-file` (or `PASSWD`) and `--sign` say.
public struct SMBDirectSendLogin: Sendable {
    /// The user, or `nil` for an anonymous session.
    public var credentials: SMB2Credentials?
    /// Whether the client requires the session to sign, whatever the server asks.
    public var requiresSigning: Bool

    /// A login as the user of `credentials` (anonymous without), requiring signing or not.
    public init(credentials: SMB2Credentials? = nil, requiresSigning: Bool = false) {
        self.credentials = credentials
        self.requiresSigning = requiresSigning
    }

    /// An anonymous session that signs only if the server requires it (which it cannot).
    public static var anonymous: SMBDirectSendLogin { SMBDirectSendLogin() }

    /// Negotiates, sets up the session (the user's, or anonymous) and connects to `share`.
    func start<Domain>(_ client: SMB2Client<Domain>, share: String) throws(SMB2Error) {
        try client.negotiate()
        if let credentials {
            try client.setUpSession(credentials)
        } else {
            try client.setUpAnonymousSession()
        }
        try client.connectTree(share)
    }

    /// The users the in-process server knows: this login's, or none (anonymous).
    var serverUsers: [String: String] {
        credentials.map { [$0.user: $0.password] } ?? [:]
    }

    /// The session as a report shows it: how it signs.
    static func signingText<Domain>(of client: SMB2Client<Domain>) -> String {
        client.signingAlgorithm.map { "signed (\($0))" } ?? "unsigned"
    }
}
