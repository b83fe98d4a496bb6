import IterExtract
import Testing
import ScatterList

@Suite("ScatterEntry")
struct ScatterEntryTests {
    @Test("an entry's address is its page's address plus its offset, even past the first page")
    func address() {
        let entry = ScatterEntry(page: Page(frame: 0x10), offset: 0x1234, length: 8)
        #expect(entry.address == 0x10 << 12 + 0x1234)
        #expect(!entry.isChainLink && !entry.isEnd)
    }
}
