import IterExtract
import RDMASGE
import SMBDirect
import Testing
import SoftVerbs

/// How many buffer descriptors an RDMA-channel request carries (issue 19). ksmbd
/// charges at least one of its rw credits per descriptor and holds only a few (9 on
/// rxe with its default 8 MiB I/O size), so a request with more descriptors than that
/// waits for credits that never come. The kernel client sends one descriptor per I/O;
/// this client sends one per virtually contiguous run of memory, which is one per I/O
/// for a page cache whose pages sit one after another.
@Suite("SMB Direct buffer descriptors per request")
struct DescriptorCountTests {
    /// Writes `pages` pages of single-page folios through the loopback, the pages one
    /// after another in memory or, `scattered`, every other page of the pool (no two
    /// of them adjacent); returns the client's statistics after checking the copy.
    func writeOrderZero(pages: Int, scattered: Bool, maxDescriptors: Int = 16) throws
        -> SMB2Client<SoftProtectionDomain>.Statistics {
        let stride = scattered ? 2 : 1
        let pool = try PagePool(pageCount: pages * stride)
        let folios = try (0..<pages * stride).map { _ in try pool.allocateFolio(order: 0) }
        let cache = PageCache()
        let bytes = randomBytes(pages * pageSize, seed: 0x0D)
        for index in 0..<pages {
            let folio = folios[index * stride]
            folio.bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.withUnsafeBytes { $0 }[index * pageSize..<(index + 1) * pageSize]))
            try cache.insert(folio, at: index)
        }
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let smb = try SMB2Loopback(device: SoftVerbs(), root: directory.path)
        smb.client.maxDescriptors = maxDescriptors
        smb.client.inlineThreshold = 0
        try connectShare(smb)
        let file = try smb.client.create("copy")
        var iterator = try IOIterator(pageCache: cache, position: 0, count: bytes.count, direction: .source)
        #expect(try smb.client.write(&iterator, to: file) == bytes.count)
        try smb.client.close(file)
        #expect(smb.client.connection.peerReadableRegistrations.regionCount == 0)
        try smb.close()
        #expect(directory.read("copy") == bytes)
        return smb.client.statistics
    }

    @Test("single pages one after another go as one descriptor per WRITE, as the kernel client sends")
    func contiguousSinglePages() throws {
        let statistics = try writeOrderZero(pages: 1024, scattered: false)
        #expect(statistics.rdmaWrites == 4, "1 MiB WRITEs, not 64 KiB ones cut at 16 descriptors")
        #expect(statistics.bufferDescriptors == statistics.rdmaWrites)
    }

    @Test("scattered single pages go as at most maxDescriptors descriptors per WRITE", arguments: [1, 8])
    func scatteredSinglePages(maxDescriptors: Int) throws {
        let statistics = try writeOrderZero(pages: 256, scattered: true, maxDescriptors: maxDescriptors)
        #expect(statistics.bufferDescriptors <= statistics.rdmaWrites * maxDescriptors)
        #expect(statistics.bufferDescriptors == 256, "pages apart are not joined")
    }
}
