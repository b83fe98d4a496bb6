import Testing
@testable import RDMASGE
#if RDMA
import CVerbs
#endif

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
        #expect(MemoryLayout<ibv_sge>.size == MemoryLayout<SGE>.size)
        #expect(MemoryLayout<ibv_sge>.stride == MemoryLayout<SGE>.stride)
        #expect(MemoryLayout<ibv_sge>.offset(of: \ibv_sge.addr) == 0)
        #expect(MemoryLayout<ibv_sge>.offset(of: \ibv_sge.length) == 8)
        #expect(MemoryLayout<ibv_sge>.offset(of: \ibv_sge.lkey) == 12)
        #endif
    }
}
