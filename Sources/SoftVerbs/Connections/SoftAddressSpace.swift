#if canImport(Glibc)
import Glibc
#endif
import Locking
import Verbs

/// An IPv4 or IPv6 address, as `inet_pton(3)` parses it.
struct SoftAddress: Hashable {
    /// `AF_INET` or `AF_INET6`.
    let family: Int32
    /// The address in network order: 4 bytes for IPv4, 16 for IPv6.
    let bytes: [UInt8]

    /// Parses `host` as an IPv4 address, else as an IPv6 address.
    /// - Throws: `EINVAL` with `call` when `host` is neither.
    init(parsing host: String, call: VerbsCall) throws(VerbsError) {
        for (family, size) in [(AF_INET, 4), (AF_INET6, 16)] {
            var bytes = [UInt8](repeating: 0, count: size)
            if bytes.withUnsafeMutableBytes({ inet_pton(family, host, $0.baseAddress) }) == 1 {
                self.family = family
                self.bytes = bytes
                return
            }
        }
        throw VerbsError(call, errno: EINVAL, "\"\(host)\" is no IPv4 or IPv6 address")
    }

    /// Whether this is the wildcard address (`0.0.0.0` or `::`).
    var isAny: Bool { bytes.allSatisfy { $0 == 0 } }

    /// Whether a listener bound to this address receives connections for `address`:
    /// the same address, or a wildcard of its family; `::` also covers IPv4, as a
    /// dual-stack IPv6 socket does.
    func covers(_ address: SoftAddress) -> Bool {
        self == address || isAny && (family == address.family || family == AF_INET6)
    }
}

/// The process's own address space for ``SoftListener``s: which listener's request
/// queue each (address, port) name is bound to, behind a pthread mutex.
enum SoftAddressSpace {
    /// A bound name.
    struct Name: Hashable {
        let address: SoftAddress
        let port: UInt16
    }

    /// The first port picked for a bind to port 0 (the start of the dynamic range).
    static let firstDynamicPort: UInt16 = 49152

    private static let bindings = LockedValue<[Name: SoftRequestQueue]>([:])

    /// Binds `queue` to `address` and `port` (the first free dynamic port when 0); the
    /// port bound.
    /// - Throws: `EADDRINUSE` when a queue is bound to the port on an address that
    ///   overlaps (the same one, or a wildcard covering either), or when port 0 finds no
    ///   free port.
    static func bind(_ queue: SoftRequestQueue, address: SoftAddress, port: UInt16) throws(VerbsError) -> UInt16 {
        try bindings.withLock { (bindings) throws(VerbsError) -> UInt16 in
            func isTaken(_ port: UInt16) -> Bool {
                bindings.keys.contains { $0.port == port && ($0.address.covers(address) || address.covers($0.address)) }
            }
            let chosen: UInt16
            if port != 0 {
                guard !isTaken(port) else {
                    throw VerbsError(.bindAddress, errno: EADDRINUSE, "port \(port) is already bound on an overlapping address")
                }
                chosen = port
            } else {
                guard let free = (firstDynamicPort...UInt16.max).first(where: { !isTaken($0) }) else {
                    throw VerbsError(.bindAddress, errno: EADDRINUSE, "no free port from \(firstDynamicPort) up")
                }
                chosen = free
            }
            bindings[Name(address: address, port: chosen)] = queue
            return chosen
        }
    }

    /// Frees `name` if `queue` is bound to it.
    static func unbind(_ name: Name, of queue: SoftRequestQueue) {
        bindings.withLock { bindings in
            if bindings[name] === queue { bindings[name] = nil }
        }
    }

    /// The queue that receives connections for `address` and `port`: the one bound to
    /// exactly that name, else one bound to a wildcard covering it.
    static func queue(for address: SoftAddress, port: UInt16) -> SoftRequestQueue? {
        bindings.withLock { bindings in
            bindings[Name(address: address, port: port)]
                ?? bindings.first { $0.key.port == port && $0.key.address.covers(address) }?.value
        }
    }
}
