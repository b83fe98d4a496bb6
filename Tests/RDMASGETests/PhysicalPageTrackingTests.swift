import Glibc
import IterExtract
import RDMASGE
import Testing
import SoftVerbs

/// Unmaps `pages` pages at `base` and maps new anonymous memory at the same address, as
/// `free` followed by `malloc` does with a large block: the same virtual addresses,
/// other physical pages.
func remap(_ base: UnsafeMutableRawPointer, pages: Int) throws {
    munmap(base, pages * pageSize)
    let again = mmap(base, pages * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
    try #require(again == base, "the address was taken between munmap and mmap")
}

/// A tracking device's pair of queue pairs, and memory of its own mapped far away so that
/// a test can unmap it and map new memory at the same address.
final class RemappableMemory: @unchecked Sendable {
    let verbs: VerbsPair
    let pages: Int
    let base: UnsafeMutableRawPointer
    /// Registered with every access before any remap.
    let region: SoftMemoryRegion
    /// A buffer that is never remapped, registered with every access.
    let other = PlainBuffer(pages: 4)
    let otherRegion: SoftMemoryRegion

    init(hint: UInt, pages: Int = 4) throws {
        verbs = try VerbsPair(tracksPhysicalPages: true)
        self.pages = pages
        base = try mapFarAway(pages: pages, hint: hint)
        memset(base, 0x11, pages * pageSize)
        region = try verbs.domain.registerMemory(UnsafeMutableRawBufferPointer(start: base, count: pages * pageSize), access: .all)
        otherRegion = try verbs.domain.registerMemory(other.bytes, access: .all)
    }

    deinit { munmap(base, pages * pageSize) }

    var address: UInt { UInt(bitPattern: base) }
    var length: Int { pages * pageSize }
    var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: length) }

    /// Replaces page `page` (all pages when `nil`) with a new mapping filled with `byte`.
    func remap(page: Int? = nil, filling byte: UInt8) throws {
        let start = base + (page ?? 0) * pageSize
        let count = page == nil ? pages : 1
        try RDMASGETests.remap(start, pages: count)
        memset(start, Int32(byte), count * pageSize)
    }

    /// The statuses of every completion on both sides.
    func statuses() throws -> [WorkCompletionStatus] {
        try verbs.drain(verbs.senderQueue).map(\.status) + verbs.drain(verbs.receiverQueue).map(\.status)
    }
}

/// What each page of `bytes` holds: its byte when every byte of the page is the same,
/// else `nil`. Failures print four values rather than 16 KiB.
func pageFills(_ bytes: UnsafeMutableRawBufferPointer) -> [UInt8?] {
    stride(from: 0, to: bytes.count, by: pageSize).map { start in
        let page = bytes[start..<min(start + pageSize, bytes.count)]
        return page.allSatisfy { $0 == page.first } ? page.first : nil
    }
}

@Suite("SoftVerbs tracking physical pages", .enabled(if: SoftVerbs.canTrackPhysicalPages))
struct PhysicalPageTrackingTests {
    let poison = SoftVerbs.poisonByte

    @Test("unchanged mappings: SEND, RDMA WRITE and RDMA READ move the bytes as without tracking")
    func unchangedMappings() throws {
        let memory = try RemappableMemory(hint: 0x4000_4000_0000)
        let verbs = memory.verbs
        memset(memory.other.bytes.baseAddress!, 0x22, memory.length)
        // SEND from the tracked region into the other buffer.
        try verbs.receive([sge(memory.other.address, memory.length, memory.otherRegion.lkey)])
        try verbs.send([sge(memory.address, memory.length, memory.region.lkey)])
        #expect(pageFills(memory.other.bytes) == [0x11, 0x11, 0x11, 0x11])
        // RDMA WRITE into it, then RDMA READ it back.
        memset(memory.other.bytes.baseAddress!, 0x33, memory.length)
        try verbs.send([sge(memory.other.address, memory.length, memory.otherRegion.lkey)], id: 2, opcode: .rdmaWrite,
                       remoteAddress: UInt64(memory.address), rkey: memory.region.rkey)
        #expect(pageFills(memory.bytes) == [0x33, 0x33, 0x33, 0x33])
        memset(memory.other.bytes.baseAddress!, 0, memory.length)
        try verbs.send([sge(memory.other.address, memory.length, memory.otherRegion.lkey)], id: 3, opcode: .rdmaRead,
                       remoteAddress: UInt64(memory.address), rkey: memory.region.rkey)
        #expect(pageFills(memory.other.bytes) == [0x33, 0x33, 0x33, 0x33])
        #expect(try memory.statuses().allSatisfy { $0 == .success })
    }

    @Test("a SEND from a page mapped anew delivers the poison byte for that page, the old bytes elsewhere")
    func sendFromRemappedPage() throws {
        let memory = try RemappableMemory(hint: 0x4000_5000_0000)
        try memory.remap(page: 1, filling: 0x77)
        try memory.verbs.receive([sge(memory.other.address, memory.length, memory.otherRegion.lkey)])
        try memory.verbs.send([sge(memory.address, memory.length, memory.region.lkey)])
        #expect(pageFills(memory.other.bytes) == [0x11, poison, 0x11, 0x11])
        #expect(try memory.statuses() == [.success, .success], "a real device reports nothing either")
    }

    @Test("a receive into memory mapped anew goes nowhere: the new mapping keeps its bytes")
    func receiveIntoRemappedMemory() throws {
        let memory = try RemappableMemory(hint: 0x4000_6000_0000)
        try memory.remap(filling: 0x77)
        memset(memory.other.bytes.baseAddress!, 0x22, memory.length)
        try memory.verbs.receive([sge(memory.address, memory.length, memory.region.lkey)])
        try memory.verbs.send([sge(memory.other.address, memory.length, memory.otherRegion.lkey)])
        #expect(pageFills(memory.bytes) == [0x77, 0x77, 0x77, 0x77])
        #expect(try memory.statuses() == [.success, .success])
    }

    @Test("a peer's RDMA WRITE through the rkey is dropped on a page mapped anew, lands elsewhere")
    func remoteWriteIntoRemappedPage() throws {
        let memory = try RemappableMemory(hint: 0x4000_7000_0000)
        try memory.remap(page: 2, filling: 0x77)
        memset(memory.other.bytes.baseAddress!, 0x22, memory.length)
        try memory.verbs.send([sge(memory.other.address, memory.length, memory.otherRegion.lkey)], opcode: .rdmaWrite,
                              remoteAddress: UInt64(memory.address), rkey: memory.region.rkey)
        #expect(pageFills(memory.bytes) == [0x22, 0x22, 0x77, 0x22])
        #expect(try memory.statuses() == [.success])
    }

    @Test("a peer's RDMA READ through the rkey of memory mapped anew reads the poison byte")
    func remoteReadOfRemappedMemory() throws {
        let memory = try RemappableMemory(hint: 0x4000_8000_0000)
        try memory.remap(page: 3, filling: 0x77)
        try memory.verbs.send([sge(memory.other.address, memory.length, memory.otherRegion.lkey)], opcode: .rdmaRead,
                              remoteAddress: UInt64(memory.address), rkey: memory.region.rkey)
        #expect(pageFills(memory.other.bytes) == [0x11, 0x11, 0x11, poison])
        #expect(try memory.statuses() == [.success])
    }

    @Test("an RDMA READ into local memory mapped anew goes nowhere")
    func readIntoRemappedMemory() throws {
        let memory = try RemappableMemory(hint: 0x4000_9000_0000)
        try memory.remap(page: 0, filling: 0x77)
        memset(memory.other.bytes.baseAddress!, 0x22, memory.length)
        try memory.verbs.send([sge(memory.address, memory.length, memory.region.lkey)], opcode: .rdmaRead,
                              remoteAddress: UInt64(memory.other.address), rkey: memory.otherRegion.rkey)
        #expect(pageFills(memory.bytes) == [0x77, 0x22, 0x22, 0x22])
        #expect(try memory.statuses() == [.success])
    }

    @Test("without tracking, the same SEND copies the new mapping's bytes: the staleness is invisible")
    func withoutTracking() throws {
        let verbs = try VerbsPair()
        let base = try mapFarAway(pages: 1, hint: 0x4000_A000_0000)
        defer { munmap(base, pageSize) }
        memset(base, 0x11, pageSize)
        let region = try verbs.domain.registerMemory(UnsafeMutableRawBufferPointer(start: base, count: pageSize), access: [])
        try remap(base, pages: 1)
        memset(base, 0x77, pageSize)
        let target = PlainBuffer(pages: 1)
        let targetRegion = try verbs.domain.registerMemory(target.bytes, access: .localWrite)
        try verbs.receive([sge(target.address, pageSize, targetRegion.lkey)])
        try verbs.send([sge(UInt(bitPattern: base), pageSize, region.lkey)])
        #expect(pageFills(target.bytes) == [0x77])
    }
}
