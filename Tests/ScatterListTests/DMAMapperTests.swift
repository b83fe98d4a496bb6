import IterExtract
import ScatterList
import TestKit
import Testing

@Suite("DMA mapping")
struct DMAMapperTests {
    /// A table of the KUnit UBUF buffer, one entry per page (256 entries).
    static func kunitTable(_ buffer: KUnitBuffer, ledger: PinLedger) throws -> ScatterTable {
        buffer.fillWithPattern()
        let table = ScatterTable()
        var iterator = IOIterator(source: UnsafeRawBufferPointer(buffer.bytes))
        try iterator.extract(maxSize: .max, into: table, maxEntries: 1000, ledger: ledger)
        table.markEnd()
        return table
    }

    /// The bytes the DMA segments reach through `translate`, page by page.
    static func deviceBytes(_ table: ScatterTable, through translate: (UInt64) -> UInt?) -> [UInt8] {
        var result: [UInt8] = []
        for segment in table.dmaSegments {
            var done = 0
            while done < segment.length {
                let iova = segment.address + UInt64(done)
                let piece = min(segment.length - done, pageSize - Int(iova & UInt64(pageSize - 1)))
                let address = translate(iova)!
                result += UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: piece)
                done += piece
            }
        }
        return result
    }

    @Test("the identity mapper gives each entry its direct-view address and does not coalesce")
    func identity() throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        let table = try Self.kunitTable(buffer, ledger: ledger)
        try table.map(using: IdentityDMAMapper())
        #expect(table.isMapped && table.mappedCount == table.count)
        #expect(table.allSatisfy { $0.dmaAddress == UInt64($0.address) && $0.dmaLength == $0.length })
        #expect(Self.deviceBytes(table) { UInt($0) } == KUnitBuffer.expectedStream(ranges: [(0, buffer.count)]))
        table.unmap()
        #expect(!table.isMapped && table.mappedCount == 0 && table.allSatisfy { $0.dmaAddress == 0 && $0.dmaLength == 0 })
        table.releasePins(ledger: ledger)
        #expect(ledger.isEmpty)
    }

    @Test("the IOMMU maps into IOVA space, coalesces contiguous entries up to its max segment, and unmaps",
          arguments: [pageSize, 1 << 16, 1 << 20])
    func iommu(maxSegmentSize: Int) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        let table = try Self.kunitTable(buffer, ledger: ledger)
        let iommu = IOMMUMapper(pageCount: 1024, maxSegmentSize: maxSegmentSize)
        try table.map(using: iommu)
        #expect(iommu.freePageCount == 1024 - 256)
        // Every entry is a whole page, so all 256 become contiguous in IOVA.
        #expect(table.mappedCount == buffer.count / maxSegmentSize)
        #expect(table.dmaSegments.allSatisfy { $0.length <= maxSegmentSize })
        #expect(table.dmaSegments.reduce(0) { $0 + $1.length } == buffer.count)
        #expect(table.dropFirst(table.mappedCount).allSatisfy { $0.dmaLength == 0 })
        #expect(Self.deviceBytes(table, through: iommu.translate) == KUnitBuffer.expectedStream(ranges: [(0, buffer.count)]))
        table.unmap()
        #expect(iommu.freePageCount == 1024 && !table.isMapped)
        #expect(iommu.translate(iommu.iovaBase) == nil)
        table.releasePins(ledger: ledger)
    }

    @Test("entries with offsets keep them in IOVA and only page-aligned neighbours coalesce")
    func iommuOffsets() throws {
        let buffer = KUnitBuffer()
        buffer.fillWithPattern()
        let kvecs = buffer.kvecs()
        let table = ScatterTable()
        try kvecs.withUnsafeBufferPointer { segments in
            var iterator = try IOIterator(kvecs: segments, direction: .source)
            try iterator.extract(maxSize: .max, into: table, maxEntries: 1000)
        }
        let iommu = IOMMUMapper(pageCount: 512)
        try table.map(using: iommu)
        #expect(table.mappedCount < table.count)
        #expect(table[0].dmaAddress & 0xfff == UInt64(table[0].address & 0xfff))
        #expect(Self.deviceBytes(table, through: iommu.translate) == KUnitBuffer.expectedStream(ranges: KUnit.kvecRanges))
        table.unmap()
        #expect(iommu.freePageCount == 512)
    }

    @Test("an exhausted IOVA space is a typed error that leaves the table unmapped and the space as it was")
    func exhausted() throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        let table = try Self.kunitTable(buffer, ledger: ledger)
        let iommu = IOMMUMapper(pageCount: 300)
        let small = try ScatterTable(pages: Array(buffer.pages.prefix(100)), offset: 0, size: 100 * pageSize)
        try small.map(using: iommu)
        let before = Array(table)
        #expect(throws: ScatterListError.iovaSpaceExhausted(requestedPages: 256, largestFreeRun: 200)) {
            try table.map(using: iommu)
        }
        #expect(!table.isMapped && table.mappedCount == 0 && Array(table) == before)
        #expect(iommu.freePageCount == 200)
        small.unmap()
        try table.map(using: iommu)
        #expect(table.isMapped)
        table.unmap()
        table.releasePins(ledger: ledger)
        #expect(ledger.isEmpty && iommu.freePageCount == 300)
    }

    @Test("a table still mapped when it goes away gives its IOVA space back")
    func unmapOnDeinit() throws {
        let iommu = IOMMUMapper(pageCount: 8)
        do {
            let table = try ScatterTable(pages: [Page(frame: 0x100), Page(frame: 0x101)], offset: 0, size: 2 * pageSize)
            try table.map(using: iommu)
            #expect(iommu.freePageCount == 6 && table.mappedCount == 1)
        }
        #expect(iommu.freePageCount == 8)
    }
}
