import Glibc
import IterExtract

/// A random iterator of one kind over random memory, with the reference model of the
/// bytes it describes. The fixture owns the memory, segment arrays and containers;
/// it must outlive every iterator made from it.
public final class RandomIterator: @unchecked Sendable, CustomStringConvertible {
    /// The kinds that describe memory and can be generated.
    public static let kinds = IteratorMemory.kinds

    public let kind: IOIteratorKind
    public let direction: IODirection
    public let seed: UInt64
    public let pool: PagePool
    public private(set) var ranges: [MemoryRange] = []
    /// The descriptions of ``ranges`` by ``kind``.
    private var memory: IteratorMemory!
    private var random: SplitMix64

    /// Creates a random iterator description of `kind` from `seed`.
    public init(kind: IOIteratorKind, direction: IODirection = .source, seed: UInt64, maxSegments: Int = 12) {
        precondition(RandomIterator.kinds.contains(kind))
        self.kind = kind
        self.direction = direction
        self.seed = seed
        self.random = SplitMix64(seed: seed)
        self.pool = try! PagePool(pageCount: 2048, placement: .shuffled(seed: seed))
        switch kind {
        case .ubuf:
            let range = randomPiece(maxOrder: 4)
            ranges = [range]
            memory = IteratorMemory(pool: pool, userBuffer: range)
        case .iovec, .kvec:
            ranges = makeSegmentRanges(count: Int.random(in: 1...maxSegments, using: &random))
            memory = IteratorMemory(pool: pool, segments: ranges)
        case .bvec:
            ranges = makeSegmentRanges(count: Int.random(in: 1...maxSegments, using: &random))
            memory = IteratorMemory(pool: pool, bioVecs: ranges.map(IteratorMemory.bioVec(over:)))
        case .xarray:
            let cache = PageCache()
            var index = Int.random(in: 0...3, using: &random) * 512
            var folios: [(Int, Folio)] = []
            for _ in 0..<Int.random(in: 1...maxSegments, using: &random) {
                let order = Int.random(in: 0...3, using: &random)
                index = (index + (1 << order) - 1) / (1 << order) * (1 << order)
                if !folios.isEmpty, folios.last!.0 + folios.last!.1.pageCount != index { break }
                let folio = try! pool.allocateFolio(order: order)
                try! cache.insert(folio, at: index)
                folios.append((index, folio))
                index += 1 << order
            }
            // Only the run of folios with no hole between them is the iterator's memory.
            let first = folios[0]
            let position = first.0 * pageSize + Int.random(in: 0..<first.1.size, using: &random)
            ranges = folios.enumerated().map { i, entry in
                let skip = i == 0 ? position - first.0 * pageSize : 0
                return MemoryRange(address: entry.1.address + UInt(skip), length: entry.1.size - skip)
            }
            memory = IteratorMemory(pool: pool, pageCache: (cache, position, ranges.reduce(0) { $0 + $1.length }))
        case .folioq:
            let folios = (0..<Int.random(in: 1...maxSegments, using: &random)).map { _ in
                try! pool.allocateFolio(order: Int.random(in: 0...3, using: &random))
            }
            let queue = FolioQueue.chain(of: folios, segmentCapacity: Int.random(in: 1...5, using: &random))
            let offset = Int.random(in: 0..<folios[0].size, using: &random)
            ranges = folios.enumerated().map { i, folio in
                let skip = i == 0 ? offset : 0
                return MemoryRange(address: folio.address + UInt(skip), length: folio.size - skip)
            }
            memory = IteratorMemory(pool: pool, folioQueue: (queue, offset, ranges.reduce(0) { $0 + $1.length }))
        default:
            preconditionFailure()
        }
        for range in ranges {
            for i in 0..<range.length { range.bytes[i] = UInt8.random(in: 0...255, using: &random) }
        }
    }

    /// The total number of bytes described.
    public var totalCount: Int { ranges.reduce(0) { $0 + $1.length } }

    /// A fresh model of the bytes.
    public var model: ReferenceModel { ReferenceModel(ranges: ranges) }

    /// A fresh iterator at the start. The fixture made the memory, so the iterator is valid and making it cannot throw.
    public func makeIterator() -> IOIterator { memory.iterator(kind, direction) }

    /// A random number from the fixture's generator (for tests' own choices).
    public func next(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }

    public var description: String { "\(kind) seed \(seed) (\(ranges.count) ranges, \(totalCount) bytes)" }

    /// A random piece of a fresh folio of order up to `maxOrder`.
    private func randomPiece(maxOrder: Int) -> MemoryRange {
        let folio = try! pool.allocateFolio(order: Int.random(in: 0...maxOrder, using: &random))
        let start = Int.random(in: 0..<folio.size, using: &random)
        let length = Int.random(in: 1...(folio.size - start), using: &random)
        return MemoryRange(address: folio.address + UInt(start), length: length)
    }

    /// Segment ranges: some empty, some continuing right after the previous one.
    private func makeSegmentRanges(count: Int) -> [MemoryRange] {
        var result: [MemoryRange] = []
        var room: MemoryRange?
        for _ in 0..<count {
            let roll = Int.random(in: 0..<10, using: &random)
            if roll == 0 {
                result.append(MemoryRange(address: randomPiece(maxOrder: 0).address, length: 0))
            } else if roll < 4, let space = room, space.length > 0 {
                let length = Int.random(in: 1...space.length, using: &random)
                result.append(MemoryRange(address: space.address, length: length))
                room = MemoryRange(address: space.address + UInt(length), length: space.length - length)
            } else {
                let folio = try! pool.allocateFolio(order: Int.random(in: 0...3, using: &random))
                let start = Int.random(in: 0..<folio.size, using: &random)
                let length = Int.random(in: 1...(folio.size - start), using: &random)
                let range = MemoryRange(address: folio.address + UInt(start), length: length)
                result.append(range)
                let end = range.address + UInt(length)
                room = MemoryRange(address: end, length: Int(folio.address + UInt(folio.size) - end))
            }
        }
        return result
    }
}
