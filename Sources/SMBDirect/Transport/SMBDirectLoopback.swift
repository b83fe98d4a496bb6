import RDMASGE

/// An initiator and a responder connected to each other on one device, each in its
/// own protection domain, negotiated, and driven from one thread: a blocking call on
/// one side progresses the other through ``SMBDirectConnection/idleHandler``.
///
/// This is the in-process transport of the `smbdirect-send` example and of the
/// tests; on `SoftVerbs` every byte moves by the same work requests a network
/// device would execute.
public final class SMBDirectLoopback<Device: VerbsDevice> {
    /// The device both sides use.
    public let device: Device
    /// The initiator's (client's) protection domain.
    public let initiatorDomain: Device.Domain
    /// The initiator's (client's) connection.
    public let initiator: SMBDirectConnection<Device.Domain>
    /// The responder's (server's) protection domain.
    public let responderDomain: Device.Domain
    /// The responder's (server's) connection.
    public let responder: SMBDirectConnection<Device.Domain>

    /// Creates both sides, connects their queue pairs and negotiates.
    public init(device: Device, initiator initiatorConfiguration: SMBDirectConfiguration = SMBDirectConfiguration(),
                responder responderConfiguration: SMBDirectConfiguration = SMBDirectConfiguration()) throws(SMBDirectError) {
        self.device = device
        do {
            initiatorDomain = try device.allocateProtectionDomain()
            responderDomain = try device.allocateProtectionDomain()
        } catch {
            throw .verbs(error)
        }
        initiator = try SMBDirectConnection(domain: initiatorDomain, role: .initiator, configuration: initiatorConfiguration)
        responder = try SMBDirectConnection(domain: responderDomain, role: .responder, configuration: responderConfiguration)
        do {
            try Device.Domain.QueuePairType.connect(initiator.queuePair, responder.queuePair)
        } catch {
            throw .verbs(error)
        }
        // A side that fails tears its queue pair down; the other learns it as from a
        // connection manager's disconnect event.
        initiator.idleHandler = { [weak initiator, weak responder] in
            try? responder?.progress()
            if responder?.hasFailed == true { initiator?.disconnect() }
        }
        responder.idleHandler = { [weak initiator, weak responder] in
            try? initiator?.progress()
            if initiator?.hasFailed == true { responder?.disconnect() }
        }
        try responder.start()
        try initiator.start()
        try initiator.waitUntilConnected()
        try responder.waitUntilConnected()
    }

    /// Closes both sides in order, then their protection domains.
    public func close() throws(SMBDirectError) {
        try initiator.close()
        try responder.close()
        try? initiatorDomain.close()
        try? responderDomain.close()
    }
}
