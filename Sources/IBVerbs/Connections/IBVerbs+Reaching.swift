#if RDMA
import CVerbs
import Glibc
import Verbs

extension IBVerbs {
    /// Opens the device, and the port of it, through which the connection manager
    /// reaches `host` (an IPv4 or IPv6 address): the device a client's queue pairs must
    /// be made on to connect there with ``RDMAConnection``. The corresponding C
    /// functions are `rdma_create_id`, `rdma_resolve_addr` and `ibv_open_device`.
    /// - Throws: `EINVAL` for a host that is no IP address; `EHOSTUNREACH` when no RDMA
    ///   device reaches it; `ETIMEDOUT` when resolving takes longer than `timeout`.
    public convenience init(reaching host: String, timeout: Duration = .seconds(10)) throws(VerbsError) {
        let destination = try SocketAddress(host: host, port: 0, call: .resolveAddress)
        let channel = try ConnectionManagerChannel()
        let id = try IBVerbsCalls.createID(channel.channel)
        defer { try? IBVerbsCalls.destroyID(id) }
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        try IBVerbsCalls.resolveAddress(id, destination, timeoutMilliseconds: max(1, milliseconds))
        _ = try channel.expect(RDMA_CM_EVENT_ADDR_RESOLVED, until: .now.advanced(by: timeout), call: .resolveAddress)
        guard let (name, port) = IBVerbsCalls.boundDevice(id) else {
            throw VerbsError(.resolveAddress, errno: EHOSTUNREACH, "\(host) resolved to no device")
        }
        try self.init(name: name, port: port)
    }
}
#endif
