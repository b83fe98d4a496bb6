import RDMASGE

/// The events of the connection-manager link an ``SMBDirectConnection`` runs over.
struct WatchedLink {
    /// Readable while an event waits.
    let descriptor: Int32
    /// Takes the next event without blocking.
    let takeEvent: () throws(VerbsError) -> ConnectionEvent?
}

extension SMBDirectConnection {
    /// Watches `link`, the connection-manager connection the queue pair was connected
    /// through, for as long as the connection lasts: every wait also sleeps on the
    /// link's event descriptor, and an event that ends the link (the peer disconnected,
    /// the device was removed) fails the connection at once with
    /// ``SMBDirectError/connectionEnded(_:)``, instead of after the configured timeout.
    ///
    /// A peer that goes away leaves this side's queue pair in its state: nothing
    /// completes and no message comes, so without this only the timeout would tell.
    /// The connection keeps `link` until it ends; events other than ending ones are
    /// taken and ignored. Mirrors the kernel client's `smbd_conn_upcall` on
    /// `RDMA_CM_EVENT_DISCONNECTED`.
    public func watch<Link: VerbsConnection>(_ link: Link) {
        self.link = WatchedLink(descriptor: link.eventFileDescriptor) { () throws(VerbsError) in try link.takeEvent() }
    }

    /// Takes the link's waiting events; throws (and fails the connection) for one that ends it.
    func checkLink() throws(SMBDirectError) {
        guard let link else { return }
        while true {
            let event: ConnectionEvent?
            do { event = try link.takeEvent() } catch { throw fail(.verbs(error)) }
            guard let event else { return }
            if event.endsConnection {
                self.link = nil
                throw fail(.connectionEnded(event))
            }
        }
    }
}
