import IterExtract
import RDMASGE
import Testing

@Suite("Key resolvers")
struct KeyResolverTests {
    @Test("a single key answers inside its range and refuses outside it")
    func singleKey() throws {
        let keys = SingleKeyResolver(lkey: 5, coverage: 0x10000..<0x20000, access: [.localWrite])
        #expect(try keys.resolve(MemoryRange(address: 0x10010, length: 0x100000), access: .localWrite, retaining: true)
                == KeyResolution(lkey: 5, coverage: 0x10000..<0x20000))
        #expect(throws: RDMAError.unregisteredMemory(address: 0x20000)) {
            try keys.resolve(MemoryRange(address: 0x20000, length: 1), access: [], retaining: false)
        }
        #expect(throws: RDMAError.accessDenied(address: 0x10000, lkey: 5, missing: .remoteRead)) {
            try keys.resolve(MemoryRange(address: 0x10000, length: 1), access: [.remoteRead, .localWrite], retaining: false)
        }
        #expect(throws: RDMAError.zeroLength(address: 0x10000)) {
            try keys.resolve(MemoryRange(address: 0x10000, length: 0), access: [], retaining: false)
        }
        #expect(throws: RDMAError.addressOverflow(address: UInt.max, length: 2)) {
            try keys.resolve(MemoryRange(address: UInt.max, length: 2), access: [], retaining: false)
        }
    }

    @Test("a single key for a registered region takes its keys and bounds")
    func singleKeyFromRegion() throws {
        let verbs = try VerbsPair(connect: false)
        let memory = PlainBuffer(pages: 2)
        let region = try verbs.domain.registerMemory(memory.bytes, access: .localWrite)
        let keys = SingleKeyResolver(region: region)
        #expect(keys.lkey == region.lkey && keys.coverage == region.coverage && keys.access == .localWrite)
    }

    @Test("a region table finds the region by binary search, refuses gaps and overlaps")
    func regionTable() throws {
        var table = RegionTable()
        // Inserted out of order; the table keeps them sorted.
        for (start, key) in [(0x5000, 3), (0x1000, 1), (0x3000, 2), (0x9000, 4)] as [(UInt, UInt32)] {
            try table.insert(.init(coverage: start..<start + 0x1000, lkey: key, access: key == 2 ? [] : .all))
        }
        #expect(table.regions.map(\.lkey) == [1, 2, 3, 4])
        for (address, key) in [(0x1000, 1), (0x1fff, 1), (0x3800, 2), (0x5000, 3), (0x9fff, 4)] as [(UInt, UInt32)] {
            #expect(try table.resolve(MemoryRange(address: address, length: 1), access: [], retaining: false).lkey == key)
        }
        for gap in [0x0fff, 0x2000, 0x4fff, 0x6000, 0xa000] as [UInt] {
            #expect(throws: RDMAError.unregisteredMemory(address: gap)) {
                try table.resolve(MemoryRange(address: gap, length: 1), access: [], retaining: false)
            }
        }
        #expect(throws: RDMAError.accessDenied(address: 0x3000, lkey: 2, missing: .localWrite)) {
            try table.resolve(MemoryRange(address: 0x3000, length: 1), access: .localWrite, retaining: false)
        }
        #expect(throws: RDMAError.overlappingRegion(address: 0x1800, length: 0x1000)) {
            try table.insert(.init(coverage: 0x1800..<0x2800, lkey: 9, access: []))
        }
        #expect(throws: RDMAError.zeroLength(address: 0x7000)) {
            try table.insert(.init(coverage: 0x7000..<0x7000, lkey: 9, access: []))
        }
        #expect(table.remove(startingAt: 0x3000)?.lkey == 2)
        #expect(table.remove(startingAt: 0x3000) == nil)
        #expect(throws: RDMAError.unregisteredMemory(address: 0x3000)) {
            try table.resolve(MemoryRange(address: 0x3000, length: 1), access: [], retaining: false)
        }
    }
}
