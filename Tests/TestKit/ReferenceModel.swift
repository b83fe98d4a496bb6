import Glibc
import IterExtract

/// The reference model: an iterator flattened to the list of byte ranges it
/// describes, in order, and a position in them. Everything an extractor emits must
/// concatenate to exactly these bytes.
public struct ReferenceModel {
    /// The byte ranges, in order, as addresses readable in this process.
    public let ranges: [MemoryRange]
    /// Bytes consumed so far.
    public private(set) var position = 0
    /// Bytes left.
    public private(set) var count: Int

    public init(ranges: [MemoryRange], count: Int? = nil) {
        self.ranges = ranges.filter { $0.length > 0 }
        let total = self.ranges.reduce(0) { $0 + $1.length }
        self.count = min(count ?? total, total)
    }

    public mutating func advance(_ n: Int) {
        let n = min(n, count)
        position += n
        count -= n
    }

    public mutating func revert(_ n: Int) {
        precondition(n <= position)
        position -= n
        count += n
    }

    public mutating func truncate(_ n: Int) { count = min(count, n) }

    /// Sets the count back after a truncation (never past the end of the ranges).
    public mutating func reexpand(_ n: Int) {
        let total = ranges.reduce(0) { $0 + $1.length }
        precondition(n <= total - position)
        count = n
    }

    /// The next `n` bytes (at most ``count``) as address ranges, adjacent ones merged.
    public func nextRanges(_ n: Int) -> [MemoryRange] {
        var result: [MemoryRange] = []
        var skip = position
        var left = min(n, count)
        for range in ranges where left > 0 {
            if skip >= range.length { skip -= range.length; continue }
            let piece = MemoryRange(address: range.address + UInt(skip), length: min(range.length - skip, left))
            skip = 0
            left -= piece.length
            if let last = result.last, last.address + UInt(last.length) == piece.address {
                result[result.count - 1].length += piece.length
            } else {
                result.append(piece)
            }
        }
        return result
    }

    /// The next `n` bytes' values.
    public func nextBytes(_ n: Int) -> [UInt8] {
        nextRanges(n).flatMap { Array(UnsafeRawBufferPointer($0.bytes)) }
    }
}

/// Reads `length` bytes at `offset` from `page` through the direct view, where the
/// bytes continue in the following frames.
public func bytes(of page: Page, offset: Int, length: Int) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: page.baseAddress + offset, count: length))
}

/// Merges adjacent byte ranges.
public func coalesced(_ ranges: [MemoryRange]) -> [MemoryRange] {
    var result: [MemoryRange] = []
    for range in ranges where range.length > 0 {
        if let last = result.last, last.address + UInt(last.length) == range.address {
            result[result.count - 1].length += range.length
        } else {
            result.append(range)
        }
    }
    return result
}
