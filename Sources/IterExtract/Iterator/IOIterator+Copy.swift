#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension IOIterator {
    /// Copies bytes from `buffer` into the iterator's memory and advances past them.
    /// Returns the bytes copied: fewer than `buffer.count` when the iterator ends first
    /// (or, for XARRAY, reaches a hole). A DISCARD iterator takes the bytes without
    /// storing them. Mirrors the kernel's `copy_to_iter`.
    ///
    /// Copying into a source iterator is a programmer error.
    @discardableResult
    public mutating func copy(from buffer: UnsafeRawBufferPointer) -> Int {
        precondition(direction == .destination, "copy(from:) writes into the iterator, which must be a destination")
        guard let source = buffer.baseAddress else { return 0 }
        switch kind {
        case .discard:
            let n = min(buffer.count, count)
            advance(n)
            return n
        case .pipe:
            var copied = 0
            return appendToPipe(min(buffer.count, count)) { region in
                region.copyMemory(from: UnsafeRawBufferPointer(start: source + copied, count: region.count))
                copied += region.count
            }
        default:
            var copied = 0
            let n = walk(maxBytes: buffer.count) { range in
                memcpy(UnsafeMutableRawPointer(bitPattern: range.address)!, source + copied, range.length)
                copied += range.length
                return range.length
            }
            advance(n)
            return n
        }
    }

    /// Copies bytes out of the iterator's memory into `buffer` and advances past them.
    /// Returns the bytes copied. Mirrors the kernel's `copy_from_iter`.
    ///
    /// Copying out of a destination iterator is a programmer error.
    @discardableResult
    public mutating func copy(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(direction == .source, "copy(into:) reads out of the iterator, which must be a source")
        guard let target = buffer.baseAddress else { return 0 }
        var copied = 0
        let n = walk(maxBytes: buffer.count) { range in
            memcpy(target + copied, UnsafeRawPointer(bitPattern: range.address)!, range.length)
            copied += range.length
            return range.length
        }
        advance(n)
        return n
    }

    /// Fills the next `n` bytes of the iterator's memory with zeros and advances past
    /// them. Returns the bytes zeroed. Mirrors the kernel's `iov_iter_zero`.
    @discardableResult
    public mutating func zero(_ n: Int) -> Int {
        precondition(direction == .destination, "zero(_:) writes into the iterator, which must be a destination")
        switch kind {
        case .discard:
            let taken = min(n, count)
            advance(taken)
            return taken
        case .pipe:
            return appendToPipe(min(n, count)) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        default:
            let zeroed = walk(maxBytes: n) { range in
                memset(UnsafeMutableRawPointer(bitPattern: range.address)!, 0, range.length)
                return range.length
            }
            advance(zeroed)
            return zeroed
        }
    }
}
