#if canImport(Glibc)
import Glibc
#endif
import Verbs

/// A listener for connections to the queue pairs of one ``SoftVerbs`` device: the
/// in-process equivalent of an `rdma_cm_id` bound with `rdma_bind_addr` and listening
/// with `rdma_listen`.
///
/// The listener binds a name, an IP address and a port, in an address space of the
/// process's own: nothing is bound in the kernel and no packet is sent, and only
/// ``SoftConnection/connect(to:port:queuePair:parameters:timeout:)`` in the same
/// process reaches it. `0.0.0.0` receives connections to any IPv4 address, `::` to any
/// IPv4 or IPv6 address (as a dual-stack socket does); a listener bound to an address
/// takes connections to exactly that address.
///
/// Requests wait in a queue of at most `backlog` entries until taken with
/// ``takeRequest()``; a request arriving at a full queue is refused, as a full backlog
/// drops the connection request. ``eventFileDescriptor`` is readable while a request
/// waits, so the listener can be watched by `poll(2)` or `epoll(7)` loops and by
/// `VerbsListener.accept(timeout:)` or `VerbsListener.accept(on:)`.
///
/// SoftVerbs connects queue pairs of one device only: requests whose queue pair
/// belongs to another device than the listener's are refused with `EINVAL`.
///
/// Releasing the listener closes it.
public final class SoftListener: VerbsListener, @unchecked Sendable {
    /// The device whose queue pairs the listener's connections use.
    public var device: SoftVerbs { queue.device }
    /// The address the listener is bound to, as given.
    public let host: String
    /// The port the listener is bound to (the one chosen when it was bound to port 0).
    public let port: UInt16
    private let name: SoftAddressSpace.Name
    private let queue: SoftRequestQueue

    /// Binds `host` (an IPv4 or IPv6 address; `0.0.0.0` or `::` for any) and `port`
    /// (0 picks a free port from 49152 up) and listens, keeping at most `backlog`
    /// requests waiting. The corresponding C functions are `rdma_create_id`,
    /// `rdma_bind_addr` and `rdma_listen`; this is their in-process equivalent.
    /// - Precondition: `backlog` is positive.
    /// - Throws: `EINVAL` when `host` is no IP address; `EADDRINUSE` when a listener
    ///   is bound to the port on the same address or one that overlaps it (a wildcard),
    ///   or port 0 finds no free port; `EMFILE` or `ENFILE` when no descriptor is left.
    public init(device: SoftVerbs, host: String, port: UInt16 = 0, backlog: Int = 16) throws(VerbsError) {
        precondition(backlog > 0, "a listener's backlog must be positive, not \(backlog)")
        let address = try SoftAddress(parsing: host, call: .bindAddress)
        let queue = try SoftRequestQueue(device: device, backlog: backlog)
        self.port = try SoftAddressSpace.bind(queue, address: address, port: port)
        self.host = host
        self.queue = queue
        name = SoftAddressSpace.Name(address: address, port: self.port)
    }

    /// The most requests that wait untaken; further ones are refused.
    public var backlog: Int { queue.backlog }

    /// The descriptor that is readable while a request waits (an `eventfd(2)`,
    /// non-blocking); closed by ``close()``.
    public var eventFileDescriptor: Int32 { queue.descriptor }

    /// Takes the next connection request without blocking; `nil` when none waits. The
    /// corresponding C function is `rdma_get_cm_event` (`RDMA_CM_EVENT_CONNECT_REQUEST`);
    /// this is its in-process equivalent.
    /// - Throws: `EINVAL` once the listener is closed.
    public func takeRequest() throws(VerbsError) -> SoftConnectionRequest? {
        try queue.take().map { SoftConnectionRequest(handshake: $0, device: device) }
    }

    /// Stops listening: frees the name, rejects the requests not yet taken (their
    /// requesters see `ECONNREFUSED`) and closes the descriptor. Connections already
    /// accepted stay up. A second call does nothing. The corresponding C function is
    /// `rdma_destroy_id`; this is its in-process equivalent.
    public func close() {
        SoftAddressSpace.unbind(name, of: queue)
        queue.close()
    }

    deinit { close() }
}
