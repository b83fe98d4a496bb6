import Glibc
import IterExtract
import RDMASGE
import Testing
import SoftVerbs

/// An MR cache must not hand out a registration for memory that went away: a real
/// device keeps the physical pages it pinned at registration, so a hit on such a
/// region moves the old pages' bytes. SoftVerbs shows it when it tracks physical
/// pages (stale pages read as `SoftVerbs.poisonByte`).
@Suite("MR cache staleness")
struct MRCacheStalenessTests {
    @Test("memory unmapped and mapped anew at the same address: a SEND through the cache carries the new bytes",
          .enabled(if: SoftVerbs.canTrackPhysicalPages))
    func remappedMemorySendsNewBytes() throws {
        let verbs = try VerbsPair(tracksPhysicalPages: true)
        let cache = MRCache(domain: verbs.domain)
        let pages = 4
        let length = pages * pageSize
        let base = try mapFarAway(pages: pages, hint: 0x4000_3000_0000)
        defer { munmap(base, length) }
        let range = MemoryRange(address: UInt(bitPattern: base), length: length)

        memset(base, 0x01, length)
        let first = try cache.resolve(range, access: [], retaining: true)
        cache.release(lkey: first.lkey)
        try remap(base, pages: pages)
        memset(base, 0x5E, length)
        let second = try cache.resolve(range, access: [], retaining: true)
        defer { cache.release(lkey: second.lkey) }

        let target = PlainBuffer(pages: pages)
        let targetRegion = try verbs.domain.registerMemory(target.bytes, access: .localWrite)
        defer { try? targetRegion.deregister() }
        try verbs.receive([sge(target.address, length, targetRegion.lkey)])
        try verbs.send([sge(range.address, length, second.lkey)])
        #expect(try verbs.drain(verbs.senderQueue).map(\.status) == [.success])
        #expect(try verbs.drain(verbs.receiverQueue).map(\.status) == [.success])
        #expect(pageFills(target.bytes) == [0x5E, 0x5E, 0x5E, 0x5E],
                "the SEND must carry the new bytes (0x5E); 0xDB (SoftVerbs.poisonByte) marks a page the cached region no longer maps")
    }
}
