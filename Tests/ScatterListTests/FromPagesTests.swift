import IterExtract
import ScatterList
import TestKit
import Testing

/// One row of the kernel's tools/testing/scatterlist table.
struct FromPagesCase: Sendable, CustomStringConvertible {
    var frames: [UInt]
    var appended: [UInt] = []
    /// The size of the first batch in bytes (the appended batch is always whole pages).
    var size: Int
    var maxSegment: Int
    /// The expected entry count, or nil when building must fail.
    var expectedEntries: Int?

    var description: String {
        "\(frames)\(appended.isEmpty ? "" : "+\(appended)") size \(size) max \(maxSegment) → \(expectedEntries.map(String.init) ?? "error")"
    }
}

private let P = pageSize
private let max = ScatterTable.unlimitedSegment

/// The 22 rows, with frames relative to a base frame.
private let kernelRows: [FromPagesCase] = [
    .init(frames: [0], size: P, maxSegment: 0, expectedEntries: nil),
    .init(frames: [0], size: P, maxSegment: P + 1, expectedEntries: 1),
    .init(frames: [0], size: P, maxSegment: max, expectedEntries: 1),
    .init(frames: [0], size: 1, maxSegment: max, expectedEntries: 1),
    .init(frames: [0, 1], size: 2 * P, maxSegment: max, expectedEntries: 1),
    .init(frames: [1, 0], size: 2 * P, maxSegment: max, expectedEntries: 2),
    .init(frames: [0, 1, 2], size: 3 * P, maxSegment: max, expectedEntries: 1),
    .init(frames: [0, 1, 2], appended: [3, 4, 5], size: 3 * P, maxSegment: max, expectedEntries: 1),
    .init(frames: [0, 1, 2], appended: [4, 5, 6], size: 3 * P, maxSegment: max, expectedEntries: 2),
    .init(frames: [0, 2, 1], size: 3 * P, maxSegment: max, expectedEntries: 3),
    .init(frames: [0, 1, 3], size: 3 * P, maxSegment: max, expectedEntries: 2),
    .init(frames: [1, 2, 4], size: 3 * P, maxSegment: max, expectedEntries: 2),
    .init(frames: [1, 3, 4], size: 3 * P, maxSegment: max, expectedEntries: 2),
    .init(frames: [0, 1, 3, 4], size: 4 * P, maxSegment: max, expectedEntries: 2),
    .init(frames: [0, 1, 3, 4, 5], size: 5 * P, maxSegment: max, expectedEntries: 2),
    .init(frames: [0, 1, 3, 4, 6], size: 5 * P, maxSegment: max, expectedEntries: 3),
    .init(frames: [0, 1, 2, 3, 4], size: 5 * P, maxSegment: max, expectedEntries: 1),
    .init(frames: [0, 1, 2, 3, 4], size: 5 * P, maxSegment: 2 * P, expectedEntries: 3),
    .init(frames: [0, 1, 2, 3, 4, 5], size: 6 * P, maxSegment: 2 * P, expectedEntries: 3),
    .init(frames: [0, 2, 3, 4, 5, 6], size: 6 * P, maxSegment: 2 * P, expectedEntries: 4),
    .init(frames: [0, 1, 3, 4, 5, 6], appended: Array(7...12), size: 6 * P, maxSegment: 12 * P, expectedEntries: 2),
]

@Suite("building a table from pages")
struct FromPagesTests {
    /// Frames far from anything real: the table only records them.
    static let base: UInt = 0x40000

    static func pages(_ frames: [UInt]) -> [Page] { frames.map { Page(frame: base + $0) } }

    @Test("the kernel's tools/testing/scatterlist rows", arguments: kernelRows)
    func kernelRow(_ row: FromPagesCase) throws {
        guard let expected = row.expectedEntries else {
            #expect(throws: ScatterListError.maxSegmentBelowPage(row.maxSegment)) {
                try ScatterTable(pages: Self.pages(row.frames), offset: 0, size: row.size, maxSegment: row.maxSegment)
            }
            return
        }
        let table = try ScatterTable(pages: Self.pages(row.frames), offset: 0, size: row.size, maxSegment: row.maxSegment)
        if !row.appended.isEmpty {
            try table.append(pages: Self.pages(row.appended), offset: 0, size: row.appended.count * P,
                             maxSegment: row.maxSegment)
        }
        #expect(table.count == expected)
        // Independent of the count: the entries describe exactly the pages, in order,
        // each within the rounded max segment and with END on the last.
        let described = table.flatMap { Array($0.pages) }
        let all = Self.pages(row.frames + row.appended)
        #expect(described == Array(all.prefix(described.count)))
        #expect(table.byteCount == row.size + row.appended.count * P)
        #expect(table.allSatisfy { $0.length <= row.maxSegment & ~(P - 1) })
        #expect(table.last!.isEnd && table.dropLast().allSatisfy { !$0.isEnd })
    }

    @Test("only the first entry carries the offset; a short size ends mid-page")
    func offsetAndSize() throws {
        let table = try ScatterTable(pages: Self.pages([0, 1, 5, 6]), offset: 0x123, size: 3 * P, maxSegment: max)
        #expect(table.map(\.offset) == [0x123, 0])
        #expect(table.map(\.length) == [2 * P - 0x123, P + 0x123])
        #expect(table.map(\.page) == Self.pages([0, 5]))
    }

    @Test("the first entry's segment includes its offset")
    func firstSegmentWithOffset() throws {
        let table = try ScatterTable(pages: Self.pages([0, 1, 2]), offset: 100, size: 2 * P, maxSegment: 2 * P + 5)
        #expect(table.map(\.length) == [2 * P - 100, 100])
    }

    @Test("a grown entry gains only the bytes the appended size covers")
    func appendPartialPage() throws {
        let table = try ScatterTable(pages: Self.pages([0]), offset: 0, size: P)
        try table.append(pages: Self.pages([1, 2]), offset: 0, size: P + 10)
        #expect(table.count == 1 && table[0].length == 2 * P + 10)
    }

    @Test("an entry that does not end at a page boundary is not grown")
    func noGrowthAfterPartialPage() throws {
        let table = try ScatterTable(pages: Self.pages([0]), offset: 0, size: 100)
        try table.append(pages: Self.pages([1]), offset: 0, size: P)
        #expect(table.count == 2)
        #expect(table.last!.isEnd && !table[0].isEnd)
    }

    @Test("a max segment below a page and an offset when appending are refused, leaving the table as it was")
    func badInput() throws {
        #expect(throws: ScatterListError.maxSegmentBelowPage(P - 1)) {
            try ScatterTable(pages: Self.pages([0]), offset: 0, size: P, maxSegment: P - 1)
        }
        let table = try ScatterTable(pages: Self.pages([0]), offset: 0, size: P)
        let before = Array(table)
        #expect(throws: ScatterListError.appendOffsetNotZero(8)) {
            try table.append(pages: Self.pages([1]), offset: 8, size: P - 8)
        }
        #expect(throws: ScatterListError.maxSegmentBelowPage(100)) {
            try table.append(pages: Self.pages([1]), offset: 0, size: P, maxSegment: 100)
        }
        #expect(Array(table) == before)
        // An empty table takes an offset.
        let empty = ScatterTable()
        try empty.append(pages: Self.pages([3]), offset: 8, size: 16)
        #expect(empty.count == 1 && empty[0].offset == 8)
    }
}
