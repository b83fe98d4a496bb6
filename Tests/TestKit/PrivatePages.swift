#if canImport(Glibc)
import Glibc
#endif

/// Pages of private anonymous memory of their own, as a program's own buffers are
/// (`malloc`, the stack): copy-on-write after `fork()`, unlike the shared memory of a
/// `PagePool`. Filled with zeros; unmapped when the object goes.
public final class PrivatePages: @unchecked Sendable {
    /// The pages' bytes.
    public let bytes: UnsafeMutableRawBufferPointer

    /// Maps `count` pages.
    public init(_ count: Int) {
        let length = count * Int(sysconf(Int32(_SC_PAGESIZE)))
        let base: UnsafeMutableRawPointer = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(base != MAP_FAILED, "mmap of \(count) pages failed (errno \(errno))")
        bytes = UnsafeMutableRawBufferPointer(start: base, count: length)
    }

    deinit { munmap(bytes.baseAddress, bytes.count) }

    /// The first page's address.
    public var address: UInt { UInt(bitPattern: bytes.baseAddress) }
}
