#if RDMA
import IBVerbs
import RDMASGE

/// The server and the client over librdmacm and libibverbs.
enum IBVerbsCopy {
    /// A server listening on `host` and `port`, on the device named `device` (the first when `nil`).
    static func server(host: String, port: UInt16, device name: String?,
                       configuration: CopyServer<RDMAListener, IBVerbsProtectionDomain>.Configuration)
        throws(VerbsError) -> CopyServer<RDMAListener, IBVerbsProtectionDomain> {
        let domain = try IBVerbs(name: name).allocateProtectionDomain()
        return CopyServer(listener: try RDMAListener(host: host, port: port), domain: domain, configuration: configuration)
    }

    /// A client on the device through which `host` is reached, with a cache of its own.
    static func client(reaching host: String, maxSize: Int, tuning: CopyTuning = CopyTuning())
        throws(VerbsError) -> CopyClient<RDMAConnection, IBVerbsProtectionDomain> {
        let domain = try IBVerbs(reaching: host).allocateProtectionDomain()
        return CopyClient(cache: MRCache(domain: domain, access: .localWrite), tuning: tuning, maxSize: maxSize)
    }
}
#endif
