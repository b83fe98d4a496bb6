#if canImport(Glibc)
import Glibc
#endif
import IterExtract

/// Page-aligned memory of its own (an anonymous `mmap(2)`, zero-filled), the bytes
/// rdma-copy sends from, exposes or receives into.
public final class CopyBuffer: @unchecked Sendable {
    /// The bytes, starting on a page boundary; the mapping is rounded up to whole pages.
    public let bytes: UnsafeMutableRawBufferPointer
    private let mappedLength: Int

    /// `count` zero bytes.
    /// - Precondition: `count` is positive.
    /// - Throws: ``RDMACopyError/file(path:errno:)`` (path "memory") when `mmap` fails.
    public init(count: Int) throws(RDMACopyError) {
        precondition(count > 0, "a copy buffer holds at least one byte")
        mappedLength = (count + pageSize - 1) / pageSize * pageSize
        let base = mmap(nil, mappedLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let base, base != MAP_FAILED else { throw .file(path: "memory", errno: errno) }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: count)
    }

    /// The contents of the file at `path`, which must hold 1 to `maxSize` bytes.
    /// - Throws: ``RDMACopyError/file(path:errno:)``: the `errno` of the failed call,
    ///   `EFBIG` for a file over `maxSize`, `ENODATA` for an empty one.
    public convenience init(contentsOf path: String, maxSize: Int) throws(RDMACopyError) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .file(path: path, errno: errno) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .file(path: path, errno: errno) }
        guard status.st_size <= maxSize else { throw .file(path: path, errno: EFBIG) }
        guard status.st_size > 0 else { throw .file(path: path, errno: ENODATA) }
        try self.init(count: Int(status.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = read(descriptor, bytes.baseAddress! + filled, bytes.count - filled)
            guard n > 0 else { throw .file(path: path, errno: n == 0 ? EIO : errno) }
            filled += n
        }
    }

    deinit { munmap(bytes.baseAddress, mappedLength) }

    /// The address of the first byte, as a peer addresses it.
    public var address: UInt64 { UInt64(UInt(bitPattern: bytes.baseAddress)) }

    /// Whether `other` holds the same bytes.
    public func hasSameBytes(as other: CopyBuffer) -> Bool {
        bytes.count == other.bytes.count && memcmp(bytes.baseAddress!, other.bytes.baseAddress!, bytes.count) == 0
    }

    /// Writes the bytes to a new or truncated file at `path`.
    /// - Throws: ``RDMACopyError/file(path:errno:)`` with the `errno` of the failed call.
    public func write(to path: String) throws(RDMACopyError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw .file(path: path, errno: errno) }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            guard n > 0 else { throw .file(path: path, errno: errno) }
            written += n
        }
    }

    /// Calls `body` with an IOVEC iterator over the bytes in `direction`, one `iovec`
    /// per `segmentSize` bytes (the last one shorter).
    func withIOVecIterator<R>(
        direction: IODirection, segmentSize: Int, _ body: (inout IOIterator) throws(RDMACopyError) -> R
    ) throws(RDMACopyError) -> R {
        let iovecs = stride(from: 0, to: bytes.count, by: segmentSize).map { offset in
            iovec(iov_base: bytes.baseAddress! + offset, iov_len: min(segmentSize, bytes.count - offset))
        }
        return try iovecs.withUnsafeBufferPointer { (iovecs) throws(RDMACopyError) -> R in
            // The segments lie inside one mapping: the iterator checks cannot fail.
            var iterator = try! IOIterator(iovecs: iovecs, direction: direction)
            return try body(&iterator)
        }
    }
}
