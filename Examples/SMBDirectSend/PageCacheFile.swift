#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract

/// A file read into a ``PageCache``, in folios as large as alignment allows (up to
/// 2 MiB), as the kernel's page cache holds a file with large folios: the source of
/// the XARRAY iterator `smbdirect-send` writes from.
public final class PageCacheFile {
    /// The pool the folios come from.
    public let pool: PagePool
    /// The cache, page `i` of the file at index `i`.
    public let cache: PageCache
    /// The file's size in bytes.
    public let size: Int

    /// Reads the file at `path`.
    ///
    /// - Throws: The `errno` of the failed call, or `ENOMEM` when the pool cannot be made.
    public init(path: String, maxFolioOrder: Int = Folio.maxOrder) throws(SMBDirectSendError) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .unreadableFile(path, errno: errno) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .unreadableFile(path, errno: errno) }
        size = Int(status.st_size)
        let pages = (size + pageSize - 1) / pageSize
        let blocks = 1 << maxFolioOrder
        do {
            pool = try PagePool(pageCount: max(1, (pages + blocks - 1) / blocks * blocks))
        } catch {
            throw .unreadableFile(path, errno: ENOMEM)
        }
        cache = PageCache()
        var index = 0
        while index < pages {
            var order = maxFolioOrder
            while index % (1 << order) != 0 || 1 << order > pages - index { order -= 1 }
            let folio: Folio
            do {
                folio = try pool.allocateFolio(order: order)
                try cache.insert(folio, at: index)
            } catch {
                throw .unreadableFile(path, errno: ENOMEM)
            }
            var filled = 0
            let wanted = min(folio.size, size - index * pageSize)
            while filled < wanted {
                let n = read(descriptor, folio.bytes.baseAddress! + filled, wanted - filled)
                guard n > 0 else { throw .unreadableFile(path, errno: n == 0 ? EIO : errno) }
                filled += n
            }
            index += 1 << order
        }
    }

    /// A source XARRAY iterator over the whole file.
    public func makeIterator() -> IOIterator {
        // From position 0, any size is a valid range: this cannot throw.
        try! IOIterator(pageCache: cache, position: 0, count: size, direction: .source)
    }
}
