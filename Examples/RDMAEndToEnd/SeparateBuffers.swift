#if RDMA
import Glibc
import IterExtract

/// `count` page-sized buffers, each followed by an unused page,
/// so that no two are adjacent: an IOVEC of separate 4 KiB user buffers.
final class SeparateBuffers {
    let base: UnsafeMutableRawPointer
    let count: Int
    let vectors: UnsafeMutableBufferPointer<iovec>

    init(count: Int) throws {
        guard let base = mmap(nil, 2 * count * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED else { throw Failure("mmap of \(2 * count) pages failed") }
        self.base = base
        self.count = count
        vectors = .allocate(capacity: count)
        for i in 0..<count {
            vectors[i] = iovec(iov_base: base + 2 * i * pageSize, iov_len: pageSize)
            memset(base + 2 * i * pageSize, Int32(i + 1), pageSize)
        }
    }

    deinit {
        munmap(base, 2 * count * pageSize)
        vectors.deallocate()
    }

    var byteCount: Int { count * pageSize }
    var range: MemoryRange { MemoryRange(address: UInt(bitPattern: base), length: 2 * count * pageSize) }
    func iterator() -> IOIterator { try! IOIterator(iovecs: UnsafeBufferPointer(vectors), direction: .source) }
}
#endif
