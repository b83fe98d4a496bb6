import IterExtract
import RDMASGE

/// An SMB2 client and the in-process ``SMB2Server`` on the two ends of an
/// ``SMBDirectLoopback``, driven from one thread: whenever the client waits, the
/// server answers what has arrived.
public final class SMB2Loopback<Device: VerbsDevice> {
    /// The SMB Direct connections underneath.
    public let transport: SMBDirectLoopback<Device>
    /// The in-process server, writing into its root directory.
    public let server: SMB2Server<Device.Domain>
    /// The client.
    public let client: SMB2Client<Device.Domain>

    /// Connects a client to a server that writes into `root` and serves `shareName`;
    /// the client keeps up to `depth` WRITEs in flight and counts its pins in `ledger`.
    /// The server lets in only `users` (name to password) when there are any, and
    /// either side may require sessions to sign.
    public init(device: Device, root: String, shareName: String = "share",
                client clientConfiguration: SMBDirectConfiguration = SMBDirectConfiguration(),
                server serverConfiguration: SMBDirectConfiguration = SMBDirectConfiguration(),
                inlineThreshold: Int = 4096, depth: Int = SMB2Client<Device.Domain>.defaultDepth,
                ledger: PinLedger = .shared, users: [String: String] = [:], serverRequiresSigning: Bool = false,
                clientRequiresSigning: Bool = false) throws(SMBDirectError) {
        // The server answers every request that has arrived before the client reads a
        // response: the client's backlog holds `depth` whole inline responses (a signed
        // session's READs), or the server would wait for credits the client cannot grant.
        var clientConfiguration = clientConfiguration
        clientConfiguration.maxReceiveBacklog = max(clientConfiguration.maxReceiveBacklog,
                                                    (depth + 1) * clientConfiguration.maxFragmentedSize)
        transport = try SMBDirectLoopback(device: device, initiator: clientConfiguration, responder: serverConfiguration)
        server = try SMB2Server(connection: transport.responder, root: root, shareName: shareName, users: users,
                                requiresSigning: serverRequiresSigning)
        client = SMB2Client(connection: transport.initiator, inlineThreshold: inlineThreshold, depth: depth, ledger: ledger,
                            requiresSigning: clientRequiresSigning)
        transport.initiator.idleHandler = { [weak server, weak client = transport.initiator] in
            server?.serve()
            if server?.connection.hasFailed == true { client?.disconnect() }
        }
    }

    /// Closes both connections in order.
    public func close() throws(SMBDirectError) {
        server.serve()
        try transport.close()
    }
}
