import IterExtract
import Testing
import RDMASGE
import IBVerbs

@Suite("SGE layout")
struct SGELayoutTests {
    @Test("SGE has the layout of struct ibv_sge")
    func layout() {
        #expect(MemoryLayout<SGE>.size == 16)
        #expect(MemoryLayout<SGE>.stride == 16)
        #expect(MemoryLayout<SGE>.alignment == 8)
        #expect(MemoryLayout<SGE>.offset(of: \SGE.address) == 0)
        #expect(MemoryLayout<SGE>.offset(of: \SGE.length) == 8)
        #expect(MemoryLayout<SGE>.offset(of: \SGE.lkey) == 12)
        #if RDMA
        #expect(SGE.layoutMatchesIBVSGE, "SGE and struct ibv_sge differ")
        #endif
    }

    @Test("pageCount counts the pages pages lists, at every edge")
    func pageCount() {
        let page = UInt64(IterExtract.pageSize)
        for address in [0, 1, page - 1, page, page + 1, 7 * page - 3, UInt64(UInt32.max) * 3] {
            for length: UInt32 in [0, 1, 2, UInt32(page) - 1, UInt32(page), UInt32(page) + 1, 3 * UInt32(page), UInt32.max] {
                let sge = SGE(address: address, length: length, lkey: 1)
                #expect(sge.pageCount == sge.pages.count, "\(sge)")
            }
        }
        #expect(SGE(address: page - 1, length: 2, lkey: 1).pageCount == 2)
        #expect(SGE(address: page, length: UInt32(page), lkey: 1).pageCount == 1)
    }

    @Test("pageCount(of:) sums the pages of every SGE, from contiguous storage or not")
    func pageCountOfCollection() {
        var random = SplitMix64(seed: 0x5e6e)
        let sges = (0..<200).map { _ in
            SGE(address: random.next() % (1 << 40), length: UInt32(random.next() % 70_000) * UInt32(random.next() % 2),
                lkey: 1)
        }
        let expected = sges.reduce(0) { $0 + $1.pages.count }
        #expect(expected > 0)
        #expect(SGE.pageCount(of: sges) == expected)
        #expect(SGE.pageCount(of: sges[50...]) == sges[50...].reduce(0) { $0 + $1.pages.count })
        #expect(SGE.pageCount(of: sges.lazy.map { $0 }) == expected)
        #expect(SGE.pageCount(of: [SGE]()) == 0)
    }
}
