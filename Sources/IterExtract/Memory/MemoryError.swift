/// Errors from the memory model: pools, mappings and page caches.
public enum MemoryError: Error, Equatable, Sendable {
    /// The system refused memory for an arena or a mapping of this many bytes.
    case outOfMemory(bytes: Int)
    /// No free block of this order is left in the pool.
    case poolExhausted(order: Int)
    /// A page-cache index is already occupied.
    case indexOccupied(Int)
    /// A page-cache index that is negative, or whose folio's bytes would lie past
    /// position `Int.max`.
    case indexOutOfRange(Int)
    /// A folio placed in a page cache at an index that is not a multiple of its page count.
    case misalignedIndex(index: Int, order: Int)
    /// A folio queue segment has no free slot.
    case segmentFull
}
