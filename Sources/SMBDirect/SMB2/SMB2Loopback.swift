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
    public init(device: Device, root: String, shareName: String = "share",
                client clientConfiguration: SMBDirectConfiguration = SMBDirectConfiguration(),
                server serverConfiguration: SMBDirectConfiguration = SMBDirectConfiguration(),
                inlineThreshold: Int = 4096, depth: Int = SMB2Client<Device.Domain>.defaultDepth,
                ledger: PinLedger = .shared) throws(SMBDirectError) {
        transport = try SMBDirectLoopback(device: device, initiator: clientConfiguration, responder: serverConfiguration)
        server = try SMB2Server(connection: transport.responder, root: root, shareName: shareName)
        client = SMB2Client(connection: transport.initiator, inlineThreshold: inlineThreshold, depth: depth, ledger: ledger)
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
