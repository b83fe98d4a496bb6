import IterExtract
import ScatterList
import TestKit
import Testing

@Suite("scatter tables: chunks, chain links, END")
struct ScatterTableTests {
    static func entry(_ n: Int) -> ScatterEntry {
        ScatterEntry(page: Page(frame: 0x1000 + UInt(n)), offset: n % 7, length: 10 + n)
    }

    @Test("a freshly allocated table has zeroed entries with END on its last slot")
    func freshTable() {
        let table = ScatterTable(entryCount: 5, chunkCapacity: 3)
        #expect(table.count == 5 && table.chunkCount == 3)
        #expect(table.map(\.isEnd) == [false, false, false, false, true])
        #expect(table.allSatisfy { $0.length == 0 && !$0.isChainLink })
        #expect(table.slots.map(\.isChainLink) == [false, false, true, false, false, true, false])
    }

    @Test("chain links sit in the last slot of every full chunk; next follows them and stops at END",
          arguments: Array(2...130))
    func chaining(chunkCapacity: Int) {
        let table = ScatterTable(chunkCapacity: chunkCapacity)
        let n = 3 * chunkCapacity + 1
        for i in 0..<n { table.append(Self.entry(i)) }
        let data = chunkCapacity - 1
        #expect(table.chunkCount == (n + data - 1) / data)
        let slots = table.slots
        #expect(slots.count(where: \.isChainLink) == table.chunkCount - 1)
        for (i, slot) in slots.enumerated() {
            #expect(slot.isChainLink == (i % chunkCapacity == chunkCapacity - 1), "slot \(i)")
        }
        #expect(Array(table) == (0..<n).map(Self.entry))
        #expect((0..<n).map { table[$0] } == (0..<n).map(Self.entry))

        var visited: [ScatterEntry] = []
        var position = table.firstPosition
        while let current = position {
            visited.append(table[current])
            position = table.next(after: current)
        }
        #expect(visited == (0..<n).map(Self.entry), "next(after:) follows links to the last entry")

        table.markEnd()
        var steps = 0
        position = table.firstPosition
        while let current = position { steps += 1; position = table.next(after: current) }
        #expect(steps == n)
    }

    @Test("next returns nil after an END in the middle, while for-in covers every entry")
    func endInTheMiddle() {
        let table = ScatterTable(chunkCapacity: 4)
        for i in 0..<3 { table.append(Self.entry(i)) }
        table.markEnd()
        for i in 3..<8 { table.append(Self.entry(i)) }
        var position = table.firstPosition
        var seen = 0
        while let current = position { seen += 1; position = table.next(after: current) }
        #expect(seen == 3)
        #expect(table.count == 8 && Array(table).count == 8)
        table.markEnd()
        #expect(table.map(\.isEnd) == [false, false, false, false, false, false, false, true])
    }

    @Test("nents(forLength:) counts the entries that cover a length, and refuses one the table cannot hold")
    func nentsForLength() throws {
        let table = ScatterTable(chunkCapacity: 2)
        for i in 0..<4 { table.append(Self.entry(i)) }   // lengths 10, 11, 12, 13
        #expect(try table.nents(forLength: 0) == 0)
        #expect(try table.nents(forLength: 1) == 1)
        #expect(try table.nents(forLength: 10) == 1)
        #expect(try table.nents(forLength: 11) == 2)
        #expect(try table.nents(forLength: 46) == 4)
        #expect(throws: ScatterListError.tableTooShort(requested: 47, available: 46)) {
            try table.nents(forLength: 47)
        }
        let before = Array(table)
        table.markEnd()
        #expect(Array(table).map(\.length) == before.map(\.length))
        let short = ScatterTable()
        short.append(Self.entry(0))
        short.append(Self.entry(1))
        short.append(Self.entry(2))
        short.markEnd()
        short.append(Self.entry(3))
        #expect(throws: ScatterListError.tableTooShort(requested: 40, available: 33)) {
            try short.nents(forLength: 40)
        }
    }

    @Test("reserved capacity is used without adding chunks; appending past it adds one")
    func capacity() {
        let table = ScatterTable(chunkCapacity: 10, reservingCapacity: 20)
        #expect(table.capacity == 27 && table.chunkCount == 3 && table.isEmpty)
        for i in 0..<27 { table.append(Self.entry(i)) }
        #expect(table.chunkCount == 3)
        table.append(Self.entry(27))
        #expect(table.chunkCount == 4 && table.capacity == 36)
        table.removeAll()
        #expect(table.isEmpty && table.chunkCount == 4 && table.byteCount == 0)
    }

    @Test("setting an entry keeps the table's END marker; append clears markers and keeps DMA fields")
    func setAndAppend() {
        let table = ScatterTable(entryCount: 2)
        table[1] = Self.entry(5)
        #expect(table[1].page == Self.entry(5).page && table[1].isEnd)
        var mapped = Self.entry(1)
        mapped.dmaAddress = 0x1000
        mapped.dmaLength = 11
        table.append(mapped)
        #expect(table[2].dmaAddress == 0x1000 && !table[2].isEnd && table[1].isEnd)
        #expect(table.byteCount == 15 + 11)
        #expect(table.description.contains("3 entries"))
        #expect(table[1].description.hasSuffix("END"))
        #expect(table.slots.count == 3)
    }

    @Test("an entry lists the frames its bytes occupy, offset past the first page included")
    func entryPages() {
        let entry = ScatterEntry(page: Page(frame: 0x20), offset: 0x1ff0, length: 0x20)
        #expect(Array(entry.pages) == [Page(frame: 0x21), Page(frame: 0x22)])
        #expect(Array(ScatterEntry(page: Page(frame: 0x20), offset: 5, length: 0).pages).isEmpty)
        #expect(Array(ScatterEntry(page: Page(frame: 0x20), offset: 0, length: pageSize).pages) == [Page(frame: 0x20)])
    }
}
