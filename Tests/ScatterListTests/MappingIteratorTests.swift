import IterExtract
import ScatterList
import TestKit
import Testing

@Suite("the mapping iterator and copies through it")
struct MappingIteratorTests {
    /// A table over pool memory with an entry whose offset is past its first page,
    /// one that spans pages, and one small one.
    static func makeTable(pool: PagePool) throws -> (ScatterTable, [UInt8]) {
        let folio = try pool.allocateFolio(order: 2)
        let other = try pool.allocateFolio(order: 0)
        for i in 0..<folio.size { folio.bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        for i in 0..<other.size { other.bytes[i] = UInt8(truncatingIfNeeded: i &* 13 &+ 1) }
        let table = ScatterTable(chunkCapacity: 2)
        table.append(ScatterEntry(page: folio.head, offset: 0x1ff0, length: 0x1020))   // pages 1, 2, 3
        table.append(ScatterEntry(page: other.head, offset: 100, length: 50))
        table.append(ScatterEntry(page: folio.head, offset: 5, length: 0))
        table.append(ScatterEntry(page: folio.head, offset: 10, length: 4096))
        let expected = entryBytes(table)
        return (table, expected)
    }

    @Test("pieces never cross a page, follow offsets past the first page, and cover every byte in order")
    func pieces() throws {
        let pool = try PagePool(pageCount: 16)
        let (table, expected) = try Self.makeTable(pool: pool)
        let pieces = Array(MappingIterator(table))
        #expect(pieces.allSatisfy { $0.offset + $0.bytes.count <= pageSize && $0.bytes.count > 0 })
        #expect(pieces.flatMap { Array($0.bytes) } == expected)
        let first = table[0]
        #expect(pieces[0].page == first.page.advanced(by: 1) && pieces[0].offset == 0xff0 && pieces[0].bytes.count == 0x10)
        #expect(pieces[1].page == first.page.advanced(by: 2) && pieces[1].bytes.count == pageSize)
        #expect(pieces[2].page == first.page.advanced(by: 3) && pieces[2].bytes.count == 0x10)
        #expect(pieces.count == 3 + 1 + 2)
    }

    @Test("skipping lands at the right byte; the iterator stops at END", arguments: [0, 1, 0x10, 0x1020, 0x1050, 0x1051, 9000])
    func skip(bytes skip: Int) throws {
        let pool = try PagePool(pageCount: 16)
        let (table, expected) = try Self.makeTable(pool: pool)
        var iterator = MappingIterator(table)
        #expect(iterator.skip(skip) == min(skip, expected.count))
        #expect(iterator.flatMap { Array($0.bytes) } == Array(expected.dropFirst(skip)))
        #expect(Array(MappingIterator(table, skipping: skip)).flatMap { Array($0.bytes) } == Array(expected.dropFirst(skip)))
        table.markEnd()
        table.append(ScatterEntry(page: table[0].page, offset: 0, length: 99))
        #expect(Array(MappingIterator(table, skipping: skip)).flatMap { Array($0.bytes) } == Array(expected.dropFirst(skip)))
    }

    @Test("copy out and copy in honour the skip and stop at the shorter side", arguments: [0, 7, 0x1020, 0x1040])
    func copies(skip: Int) throws {
        let pool = try PagePool(pageCount: 16)
        let (table, expected) = try Self.makeTable(pool: pool)
        #expect(copiedBytes(of: table, skipping: skip) == Array(expected.dropFirst(skip)))

        var short = [UInt8](repeating: 0, count: 33)
        #expect(short.withUnsafeMutableBytes { table.copy(into: $0, skipping: skip) } == min(33, expected.count - skip))
        #expect(Array(short.prefix(min(33, expected.count - skip))) == Array(expected.dropFirst(skip).prefix(33)))

        let incoming = (0..<(expected.count - skip + 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let written = incoming.withUnsafeBytes { table.copy(from: $0, skipping: skip) }
        #expect(written == expected.count - skip)
        #expect(entryBytes(table) == Array(expected.prefix(skip)) + incoming.prefix(written))
    }
}
