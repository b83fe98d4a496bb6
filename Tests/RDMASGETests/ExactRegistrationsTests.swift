import Glibc
import IterExtract
import RDMASGE
import Testing
import SoftVerbs

@Suite("Exact registrations")
struct ExactRegistrationsTests {
    let verbs: VerbsPair
    let memory = PlainBuffer(pages: 4)

    init() throws {
        verbs = try VerbsPair(connect: false)
    }

    @Test("a lookup registers exactly the bytes asked for, never page-rounded, never reused")
    func exactCoverage() throws {
        let registrations = ExactRegistrations(domain: verbs.domain, access: [.localWrite, .remoteWrite])
        let range = MemoryRange(address: memory.address + 100, length: 5000)
        let first = try registrations.resolve(range, access: .localWrite, retaining: true)
        #expect(first.coverage == range.address..<range.address + 5000)
        let region = try #require(registrations.region(lkey: first.lkey))
        #expect(region.address == range.address && region.length == 5000 && region.access == [.localWrite, .remoteWrite])
        let second = try registrations.resolve(range, access: [], retaining: true)
        #expect(second.lkey != first.lkey, "no reuse: every lookup has a region of its own")
        #expect(registrations.regionCount == 2 && registrations.registeredBytes == 10_000)
        #expect(registrations.registrationCount == 2 && verbs.device.registeredRegionCount == 2)
    }

    @Test("release deregisters the region at once")
    func releaseDeregisters() throws {
        let registrations = ExactRegistrations(domain: verbs.domain, access: .remoteRead)
        let resolution = try registrations.resolve(MemoryRange(address: memory.address, length: 10), access: [], retaining: true)
        let region = try #require(registrations.region(lkey: resolution.lkey))
        registrations.release(lkey: resolution.lkey)
        #expect(!region.isRegistered)
        #expect(registrations.region(lkey: resolution.lkey) == nil)
        #expect(registrations.regionCount == 0 && verbs.device.registeredRegionCount == 0)
    }

    @Test("refusals: access not granted, empty ranges, and a device that refuses register nothing")
    func refusals() throws {
        let registrations = ExactRegistrations(domain: verbs.domain, access: .remoteRead)
        let range = MemoryRange(address: memory.address, length: 10)
        #expect(throws: RDMAError.accessDenied(address: memory.address, lkey: nil, missing: .localWrite)) {
            try registrations.resolve(range, access: .localWrite, retaining: true)
        }
        #expect(throws: RDMAError.zeroLength(address: memory.address)) {
            try registrations.resolve(MemoryRange(address: memory.address, length: 0), access: [], retaining: true)
        }
        verbs.device.inject(.registration(nth: 1))
        #expect(throws: RDMAError.self) { try registrations.resolve(range, access: [], retaining: true) }
        #expect(registrations.regionCount == 0 && registrations.registrationCount == 0)
    }

    @Test("extraction gives each piece a region of exactly its bytes; releasing the SGEs deregisters them all")
    func extraction() throws {
        let registrations = ExactRegistrations(domain: verbs.domain, access: .remoteRead)
        let base = memory.bytes.baseAddress!
        let pieces = [iovec(iov_base: base + 10, iov_len: 3), iovec(iov_base: base + 13, iov_len: 4090),
                      iovec(iov_base: base + 3 * pageSize + 1, iov_len: 7)]
        let ledger = PinLedger(mode: .exact)
        try pieces.withUnsafeBufferPointer { pieces in
            var iterator = try IOIterator(iovecs: pieces, direction: .source)
            var sges: [SGE] = []
            let bytes = try iterator.extract(maxSize: 1 << 20, into: &sges, maxSGEs: 8, keys: registrations, ledger: ledger)
            #expect(bytes == 4100)
            #expect(sges.map { [$0.address, UInt64($0.length)] } == pieces.map { [UInt64(UInt(bitPattern: $0.iov_base)), UInt64($0.iov_len)] })
            for sge in sges {
                let region = try #require(registrations.region(lkey: sge.lkey))
                #expect(region.address == UInt(sge.address) && region.length == Int(sge.length))
            }
            iterator.retention(keys: registrations, ledger: ledger).release(sges)
        }
        #expect(registrations.regionCount == 0 && verbs.device.registeredRegionCount == 0 && ledger.isEmpty)
    }
}
