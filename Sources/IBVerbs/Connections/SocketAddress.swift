#if RDMA
import Glibc
import Verbs

/// An IPv4 or IPv6 address and port as the connection manager takes them (a
/// `sockaddr_in` or `sockaddr_in6` in a `sockaddr_storage`).
struct SocketAddress: CustomStringConvertible {
    private var storage = sockaddr_storage()

    /// The address of `host` (an IPv4 or IPv6 literal; no name lookup) and `port`.
    /// - Throws: `EINVAL`, reported as `call`, for a host that is neither.
    init(host: String, port: UInt16, call: VerbsCall) throws(VerbsError) {
        let parsed = withUnsafeMutableBytes(of: &storage) { raw -> Bool in
            let v4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            if inet_pton(AF_INET, host, &v4.pointee.sin_addr) == 1 {
                v4.pointee.sin_family = sa_family_t(AF_INET)
                v4.pointee.sin_port = port.bigEndian
                return true
            }
            let v6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
            if inet_pton(AF_INET6, host, &v6.pointee.sin6_addr) == 1 {
                v6.pointee.sin6_family = sa_family_t(AF_INET6)
                v6.pointee.sin6_port = port.bigEndian
                return true
            }
            return false
        }
        guard parsed else { throw VerbsError(call, errno: EINVAL, "\(host) is no IPv4 or IPv6 address") }
    }

    /// A copy of the address at `pointer`; `nil` for a family other than IPv4 or IPv6.
    init?(_ pointer: UnsafePointer<sockaddr>) {
        let length: Int
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET: length = MemoryLayout<sockaddr_in>.size
        case AF_INET6: length = MemoryLayout<sockaddr_in6>.size
        default: return nil
        }
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: length)) }
    }

    /// Runs `body` with the address as a `sockaddr` pointer.
    func withSocketAddress<R>(_ body: (UnsafeMutablePointer<sockaddr>) -> R) -> R {
        var copy = storage
        return withUnsafeMutableBytes(of: &copy) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }
    }

    /// The address as text, without the port (`192.0.2.1`, `2001:db8::1`).
    var host: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var copy = storage
        return withUnsafeMutableBytes(of: &copy) { raw -> String in
            let family = Int32(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self).pointee.sa_family)
            let address: UnsafeRawPointer = family == AF_INET
                ? UnsafeRawPointer(raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)).advanced(by: MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!)
                : UnsafeRawPointer(raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)).advanced(by: MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!)
            guard inet_ntop(family, address, &text, socklen_t(text.count)) != nil else { return "?" }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// `host:port`, with IPv6 hosts in brackets.
    var description: String {
        let port = withUnsafeBytes(of: storage) { raw in
            UInt16(bigEndian: raw.load(fromByteOffset: MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!, as: UInt16.self))
        }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
#endif
