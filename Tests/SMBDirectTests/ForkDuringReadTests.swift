import Glibc
import IterExtract
import RDMASGE
import SMBDirect
import Testing
import TestKit
import SoftVerbs

/// What the buffer of a read holds after a `fork()` while its memory was registered
/// for the server's RDMA WRITE, on a device that tracks physical pages, as a real
/// device pins them.
struct ForkDuringRead {
    /// Whether the child had the registered pages.
    var childHadPages: Bool
    /// Whether a child forked after the registration was released had them.
    var laterChildHadPages: Bool
    /// The read's data, as it was sent.
    var sent: [UInt8]
    /// Bytes 1000..<7000 of the two pages, the read's buffer: 3096 on the first page, 2904 on the second.
    var received: [UInt8]
    /// The byte the parent wrote on the first page, outside the buffer, after the fork.
    var neighbour: UInt8

    /// The client registers a read's destination (6000 bytes from the middle of a page
    /// into the next) for the server, the process forks (the child exits at once), the
    /// parent writes one byte elsewhere on the buffer's first page, and then the server
    /// RDMA-WRITEs the data into the descriptors it was given; the client releases the
    /// registration and the process forks again.
    init(forkProtection: Bool) throws {
        let device = SoftVerbs(tracksPhysicalPages: true, forkProtection: forkProtection)
        let loop = try SMBDirectLoopback(device: device)
        let pages = PrivatePages(2)
        let memory = pages.bytes
        memory.initializeMemory(as: UInt8.self, repeating: 0x11)
        sent = randomBytes(6000, seed: 19)
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: sent.count, alignment: pageSize)
        defer { source.deallocate() }
        source.copyMemory(from: sent.withUnsafeBytes { $0 })
        let sourceRegion = try loop.responderDomain.registerMemory(source, access: [])
        var destination = IOIterator(destination: UnsafeMutableRawBufferPointer(rebasing: memory[1000..<7000]))
        let registration = try loop.initiator.register(&destination, maxSize: 1 << 20)
        childHadPages = childOfForkMaps(address: pages.address, length: 2 * pageSize)
        memory[10] = 0x5A
        try loop.responder.write(UnsafeRawBufferPointer(source), lkey: sourceRegion.lkey, to: registration.descriptors)
        loop.initiator.release(registration)
        laterChildHadPages = childOfForkMaps(address: pages.address, length: 2 * pageSize)
        try sourceRegion.deregister()
        received = Array(memory[1000..<7000])
        neighbour = memory[10]
        try loop.close()
    }
}

/// A `fork()` while a read's buffer is registered for the server's RDMA WRITE (issue
/// #19). Each test runs in a process of its own (an exit test), since a fork makes the
/// pages of every other test's tracked regions copy-on-write.
@Suite("Fork during a read", .enabled(if: SoftVerbs.canTrackPhysicalPages))
struct ForkDuringReadTests {
    @Test("without fork protection, a parent's write next to the buffer after fork loses the data on that page")
    func unprotected() async {
        await #expect(processExitsWith: .success) {
            let read = try ForkDuringRead(forkProtection: false)
            #expect(read.childHadPages && read.laterChildHadPages)
            #expect(read.neighbour == 0x5A)
            // The parent's write moved it to a copy of the first page; the device wrote the
            // old page, which only the registration still holds.
            #expect(read.received[..<3096].allSatisfy { $0 == 0x11 }, "the data on the first page never arrived")
            #expect(read.received[3096...] == read.sent[3096...], "the second page, which the parent did not write, has it")
        }
    }

    @Test("with fork protection (MADV_DONTFORK on registered pages), the data arrives and only a child forked after release has the pages")
    func protected() async {
        await #expect(processExitsWith: .success) {
            let read = try ForkDuringRead(forkProtection: true)
            #expect(!read.childHadPages)
            #expect(read.laterChildHadPages, "release gives the pages back to later children")
            #expect(read.neighbour == 0x5A)
            #expect(read.received == read.sent)
        }
    }
}
