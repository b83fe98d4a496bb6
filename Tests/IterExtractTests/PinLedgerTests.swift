import IterExtract
import Testing

@Suite("PinLedger")
struct PinLedgerTests {
    let pages = (0..<4).map { Page(frame: 0x100 + UInt($0)) }

    @Test("an exact ledger counts pins per page and balances", arguments: [PinLedger.Mode.exact, .counting])
    func balance(mode: PinLedger.Mode) throws {
        let ledger = PinLedger(mode: mode)
        try ledger.pin(pages)
        try ledger.pin(pages[1...2])
        #expect(ledger.pinnedPageCount == 6)
        if mode == .exact {
            #expect(ledger.pinCount(of: pages[1]) == 2)
            #expect(ledger.pinCount(of: pages[3]) == 1)
        }
        ledger.unpin(pages)
        ledger.unpin(pages[1...2])
        #expect(ledger.isEmpty)
    }

    @Test("the limit is checked for the whole batch", arguments: [PinLedger.Mode.exact, .counting])
    func limit(mode: PinLedger.Mode) throws {
        let ledger = PinLedger(mode: mode, limit: 5)
        try ledger.pin(pages)
        #expect(throws: IOIteratorError.pinLimitExceeded(requested: 2, available: 1)) { try ledger.pin(pages[0...1]) }
        #expect(ledger.pinnedPageCount == 4)
        ledger.unpin(pages)
    }

    @Test("unpinning a page that is not pinned traps")
    func unpinUnpinned() async {
        await #expect(processExitsWith: .failure) {
            let ledger = PinLedger(mode: .exact)
            ledger.unpin([Page(frame: 0x42)])
        }
    }

    @Test("pinning from many threads at once keeps exact counts")
    func concurrent() async throws {
        let ledger = PinLedger(mode: .exact)
        let pages = self.pages
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<200 { try ledger.pin(pages); ledger.unpin(pages) } }
            }
            try await group.waitForAll()
        }
        #expect(ledger.isEmpty)
    }
}
