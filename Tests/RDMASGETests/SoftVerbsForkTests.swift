import Glibc
import IterExtract
import RDMASGE
import Testing
import TestKit
import SoftVerbs

/// Which of the four pages of `memory` a child forked now has.
func pagesInChild(_ memory: PrivatePages) -> [Bool] {
    (0..<4).map { childOfForkMaps(address: memory.address + UInt($0 * pageSize), length: pageSize) }
}

/// A device with fork protection, its domain, and four pages of memory of their own.
func protectedMemory() -> (device: SoftVerbs, domain: SoftProtectionDomain, memory: PrivatePages) {
    let device = SoftVerbs(forkProtection: true)
    return (device, try! device.allocateProtectionDomain(), PrivatePages(4))
}

/// SoftVerbs across `fork()`: `SoftVerbs(forkProtection: true)` marks registered pages
/// `MADV_DONTFORK` as libibverbs does after `ibv_fork_init`, and a device that tracks
/// physical pages writes registered pages as a device does. Every test forks, so each
/// runs in a process of its own (an exit test): a fork makes the pages of regions that
/// other tests' tracking devices watch copy-on-write.
@Suite("SoftVerbs across fork")
struct SoftVerbsForkTests {
    @Test("a region's pages, whole, are missing from a fork child while it is registered, and back after")
    func regionPagesStayOutOfChild() async {
        await #expect(processExitsWith: .success) {
            let (_, domain, memory) = protectedMemory()
            // Bytes 100..<5000: from the middle of page 0 into page 1.
            let region = try domain.registerMemory(address: memory.address + 100, length: 4900, access: .localWrite)
            #expect(pagesInChild(memory) == [false, false, true, true])
            try region.deregister()
            #expect(pagesInChild(memory) == [true, true, true, true])
        }
    }

    @Test("without fork protection, a child has registered memory (copy-on-write)")
    func unprotectedRegionsStayInChild() async {
        await #expect(processExitsWith: .success) {
            let domain = try SoftVerbs().allocateProtectionDomain()
            let memory = PrivatePages(4)
            let region = try domain.registerMemory(memory.bytes, access: .localWrite)
            #expect(pagesInChild(memory) == [true, true, true, true])
            try region.deregister()
        }
    }

    @Test("overlapping and neighbouring regions keep a page out of the child until the last on it goes, across devices")
    func pagesAreCounted() async {
        await #expect(processExitsWith: .success) {
            let (_, domain, memory) = protectedMemory()
            let other = try SoftVerbs(forkProtection: true).allocateProtectionDomain()
            let page = UInt(pageSize)
            // Pages 0–1, pages 1–2 (on another device), and page 3 exactly, next to the second.
            let first = try domain.registerMemory(address: memory.address, length: 6000, access: [])
            let second = try other.registerMemory(address: memory.address + 5000, length: 4000, access: [])
            let third = try domain.registerMemory(address: memory.address + 3 * page, length: pageSize, access: [])
            #expect(pagesInChild(memory) == [false, false, false, false])
            try first.deregister()
            #expect(pagesInChild(memory) == [true, false, false, false], "page 1 is still the second region's")
            try third.deregister()
            #expect(pagesInChild(memory) == [true, false, false, true], "the neighbour's pages are unaffected")
            // The same bytes twice: one deregistration leaves the other's pages out.
            let again = try domain.registerMemory(address: memory.address + 5000, length: 4000, access: [])
            try second.deregister()
            #expect(pagesInChild(memory) == [true, false, false, true])
            try again.deregister()
            #expect(pagesInChild(memory) == [true, true, true, true])
        }
    }

    @Test("memory not all mapped fails with madvise's ENOMEM, as ibv_reg_mr does after ibv_fork_init, and marks nothing")
    func unmappedMemory() async {
        await #expect(processExitsWith: .success) {
            let (device, domain, memory) = protectedMemory()
            munmap(memory.bytes.baseAddress! + 2 * pageSize, pageSize)
            let error = #expect(throws: VerbsError.self) {
                try domain.registerMemory(address: memory.address + 100, length: 3 * pageSize, access: [])
            }
            #expect(error?.errno == ENOMEM)
            #expect(device.registeredRegionCount == 0)
            // Pages 0, 1 and 3 only: the hole at page 2 may be mapped again by now (the
            // runtime's next one-page mmap can land in it: the likely cause of this check's one
            // failure in CI, which this machine never reproduced).
            let inChild = pagesInChild(memory)
            #expect([inChild[0], inChild[1], inChild[3]] == [true, true, true], "the mapped pages of the range were marked back")
        }
    }

    @Test("a registration the device refuses after marking its pages marks them back")
    func refusedRegistration() async {
        await #expect(processExitsWith: .success) {
            let (device, domain, memory) = protectedMemory()
            let held = try domain.registerMemory(address: memory.address, length: 100, access: [])
            let error = #expect(throws: VerbsError.self) {
                try domain.registerMemory(memory.bytes, access: .remoteWrite)
            }
            #expect(error?.errno == EINVAL)
            device.inject(.registration(nth: 1))
            #expect(throws: VerbsError.self) { try domain.registerMemory(memory.bytes, access: []) }
            #expect(pagesInChild(memory) == [false, true, true, true], "only the region that exists holds a page")
            try held.deregister()
        }
    }

    @Test("an RDMA WRITE into registered pages that fork made copy-on-write lands whole when the parent did not write them",
          .enabled(if: SoftVerbs.canTrackPhysicalPages))
    func deviceWriteIntoCopyOnWritePages() async {
        await #expect(processExitsWith: .success) {
            let verbs = try VerbsPair(tracksPhysicalPages: true)
            // The source is written before the fork: a write after it would move the
            // program away from the source's registered pages as well.
            let target = PrivatePages(2), source = PrivatePages(4)
            memset(source.bytes.baseAddress!, 0x33, 2 * pageSize)
            memset(source.bytes.baseAddress! + 2 * pageSize, 0x44, 2 * pageSize)
            let targetRegion = try verbs.domain.registerMemory(target.bytes, access: .all)
            let sourceRegion = try verbs.domain.registerMemory(source.bytes, access: [])
            #expect(statusOfForkedChild { 0 } == 0)
            // 6000 bytes from the middle of a source page: pieces end at either side's page
            // boundaries, so the device writes each target page more than once.
            for (round, byte) in [0x33, 0x44].enumerated() {
                try verbs.send([sge(source.address + UInt(round * 2 * pageSize) + 1000, 6000, sourceRegion.lkey)],
                               id: UInt64(round), opcode: .rdmaWrite, remoteAddress: UInt64(target.address + 100),
                               rkey: targetRegion.rkey)
                #expect(target.bytes[100..<6100].allSatisfy { $0 == byte }, "round \(round): every byte arrived")
            }
            #expect(try verbs.drain(verbs.senderQueue).map(\.status) == [.success, .success])
        }
    }

    @Test("random registrations and deregistrations on two devices keep out of a child exactly the pages a region is on")
    func againstPageCounts() async {
        await #expect(processExitsWith: .success) {
            let domains = [try SoftVerbs(forkProtection: true).allocateProtectionDomain(),
                           try SoftVerbs(forkProtection: true).allocateProtectionDomain()]
            let memory = PrivatePages(8)
            var random = SplitMix64(seed: 19)
            var live: [(region: SoftMemoryRegion, pages: ClosedRange<Int>)] = []
            for step in 0..<200 {
                if live.isEmpty || (live.count < 6 && Bool.random(using: &random)) {
                    let start = Int.random(in: 0..<8 * pageSize - 1, using: &random)
                    let length = Int.random(in: 1...min(3 * pageSize, 8 * pageSize - start), using: &random)
                    let domain = domains[Int.random(in: 0...1, using: &random)]
                    let region = try domain.registerMemory(address: memory.address + UInt(start), length: length, access: [])
                    live.append((region, start / pageSize...(start + length - 1) / pageSize))
                } else {
                    try live.remove(at: Int.random(in: 0..<live.count, using: &random)).region.deregister()
                }
                // Bit n: page n is held by some region, so the child must not have it.
                let held = live.reduce(0) { mask, entry in entry.pages.reduce(mask) { $0 | 1 << $1 } }
                let missing = statusOfForkedChild {
                    (0..<8).reduce(0) { mask, page in
                        msync(memory.bytes.baseAddress! + page * pageSize, pageSize, MS_ASYNC) == 0 ? mask : mask | 1 << page
                    }
                }
                #expect(missing == Int32(held), "step \(step)")
                if missing != Int32(held) { break }
            }
            for entry in live { try entry.region.deregister() }
            #expect(statusOfForkedChild { msync(memory.bytes.baseAddress!, 8 * pageSize, MS_ASYNC) } == 0)
        }
    }
}
