import Synchronization

/// The ``MRCacheRegionRecord`` of every slot of an ``MRCache``, in chunks of 64 that are
/// never moved or freed while the cache lives: a record found without the lock stays
/// valid memory however the slots change meanwhile.
///
/// Grown and indexed only under the cache's lock; lookups and releases without the lock
/// reach records through the addresses that the lookaside and the ``LKeyTable`` publish.
final class MRCacheRegionRecords {
    private static let chunkShift = 6
    private static let chunkSize = 1 << chunkShift
    private static let chunkWords = chunkSize * MRCacheRegionRecord.stride

    /// The chunks (changed under the cache's lock, which already gives exclusive access).
    @exclusivity(unchecked) private var chunks: [UnsafeMutablePointer<Atomic<UInt64>>] = []

    init() {}

    deinit {
        for chunk in chunks {
            chunk.deinitialize(count: Self.chunkWords)
            UnsafeMutableRawPointer(chunk).deallocate()
        }
    }

    /// The record of `slot`, making its chunk when `slot` is the first slot past the end.
    subscript(slot: Int) -> MRCacheRegionRecord {
        if slot >> Self.chunkShift == chunks.count { addChunk() }
        return MRCacheRegionRecord(chunks[slot >> Self.chunkShift] + (slot & (Self.chunkSize - 1)) * MRCacheRegionRecord.stride)
    }

    private func addChunk() {
        // Cache-line aligned, so that each record has a line to itself.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Self.chunkWords * 8, alignment: 64)
        let words = raw.bindMemory(to: Atomic<UInt64>.self, capacity: Self.chunkWords)
        let first = chunks.count << Self.chunkShift
        for word in 0..<Self.chunkWords {
            // A closed state: nothing takes a record before its slot's first region resets it.
            let value: UInt64 = switch word % MRCacheRegionRecord.stride {
            case 0: MRCacheRegionRecord.State.closedBit
            case 2: UInt64(first + word / MRCacheRegionRecord.stride)
            default: 0
            }
            (words + word).initialize(to: Atomic(value))
        }
        chunks.append(words)
    }
}
