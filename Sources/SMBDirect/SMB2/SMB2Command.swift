/// The SMB2 commands (MS-SMB2 2.2.1), of which this client sends, and the in-process
/// server answers, NEGOTIATE, SESSION_SETUP, TREE_CONNECT, CREATE, WRITE and CLOSE.
public enum SMB2Command: UInt16, Sendable, CustomStringConvertible {
    case negotiate = 0x0000
    case sessionSetup = 0x0001
    case logoff = 0x0002
    case treeConnect = 0x0003
    case treeDisconnect = 0x0004
    case create = 0x0005
    case close = 0x0006
    case flush = 0x0007
    case read = 0x0008
    case write = 0x0009

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
