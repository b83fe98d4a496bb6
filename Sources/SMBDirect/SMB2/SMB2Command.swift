/// The SMB2 commands (MS-SMB2 2.2.1), of which this client sends, and the in-process
/// server answers, NEGOTIATE, SESSION_SETUP, TREE_CONNECT, CREATE, WRITE and CLOSE.
public enum SMB2Command: UInt16, Sendable, CustomStringConvertible {
    /// `SMB2 NEGOTIATE`: agrees on the dialect and capabilities.
    case negotiate = 0x0000
    /// `SMB2 SESSION_SETUP`: authenticates the user and sets up a session.
    case sessionSetup = 0x0001
    /// `SMB2 LOGOFF`: ends a session.
    case logoff = 0x0002
    /// `SMB2 TREE_CONNECT`: connects the session to a share.
    case treeConnect = 0x0003
    /// `SMB2 TREE_DISCONNECT`: disconnects from a share.
    case treeDisconnect = 0x0004
    /// `SMB2 CREATE`: opens or creates a file.
    case create = 0x0005
    /// `SMB2 CLOSE`: closes an open file.
    case close = 0x0006
    /// `SMB2 FLUSH`: writes a file's cached data to storage.
    case flush = 0x0007
    /// `SMB2 READ`: reads from a file.
    case read = 0x0008
    /// `SMB2 WRITE`: writes to a file.
    case write = 0x0009

    /// The command's name as MS-SMB2 spells it, such as `TREE_CONNECT`.
    public var description: String {
        switch self {
        case .negotiate: "NEGOTIATE"
        case .sessionSetup: "SESSION_SETUP"
        case .logoff: "LOGOFF"
        case .treeConnect: "TREE_CONNECT"
        case .treeDisconnect: "TREE_DISCONNECT"
        case .create: "CREATE"
        case .close: "CLOSE"
        case .flush: "FLUSH"
        case .read: "READ"
        case .write: "WRITE"
        }
    }
}
