#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The most segments an imported `iovec` array may have (the kernel's `UIO_MAXIOV`).
public let maxIOVecSegments = 1024

/// The most bytes one read or write moves (the kernel's `MAX_RW_COUNT`, 2^31 - 4096).
public let maxReadWriteCount = Int(Int32.max) & ~(pageSize - 1)

extension IOIterator {
    /// Imports an `iovec` array as a system call's argument is imported, with the
    /// kernel's rules: more than ``maxIOVecSegments`` segments is an error, a negative
    /// length or an address range that wraps is an error, the total is clamped to
    /// ``maxReadWriteCount`` by shortening segments *in place*, and a single segment
    /// becomes a UBUF iterator. Mirrors the kernel's `import_iovec`.
    ///
    /// - Throws: ``IOIteratorError/tooManySegments(count:limit:)``,
    ///   ``IOIteratorError/invalidLength(segment:length:)``,
    ///   ``IOIteratorError/addressOverflow(address:length:)``; on error the array is
    ///   unchanged.
    public static func importing(
        _ iovecs: UnsafeMutableBufferPointer<iovec>, direction: IODirection
    ) throws(IOIteratorError) -> IOIterator {
        guard iovecs.count <= maxIOVecSegments else {
            throw .tooManySegments(count: iovecs.count, limit: maxIOVecSegments)
        }
        for (index, segment) in iovecs.enumerated() {
            try checkSegment(index, address: UInt(bitPattern: segment.iov_base), length: segment.iov_len)
        }
        var total = 0
        for index in iovecs.indices {
            let length = min(iovecs[index].iov_len, maxReadWriteCount - total)
            iovecs[index].iov_len = length
            total += length
        }
        // Checked above: the segments need no second pass.
        if iovecs.count == 1 {
            return IOIterator(kind: .ubuf, direction: direction, count: total, base: UInt(bitPattern: iovecs[0].iov_base))
        }
        return IOIterator(kind: .iovec, direction: direction, count: total,
                          segments: UnsafeRawPointer(iovecs.baseAddress), segmentCount: iovecs.count)
    }
}
