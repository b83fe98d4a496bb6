/// One segment of a folio queue: a small array of folio slots linked to the
/// segments before and after it. A chain of segments is the memory behind a FOLIOQ
/// iterator (the kernel's `struct folio_queue`, used by netfs).
///
/// Mutating a segment an iterator is walking is a programmer error.
public final class FolioQueue: @unchecked Sendable {
    /// Slots per segment by default (the kernel's `PAGEVEC_SIZE`).
    public static let defaultCapacity = 31

    /// The number of slots.
    public let capacity: Int
    @usableFromInline var folios: [Folio]
    /// The next segment.
    public internal(set) var next: FolioQueue?
    /// The previous segment.
    public internal(set) weak var previous: FolioQueue?

    /// Creates an empty segment.
    public init(capacity: Int = FolioQueue.defaultCapacity) {
        precondition(capacity > 0, "a folio queue segment needs at least one slot")
        self.capacity = capacity
        self.folios = []
        folios.reserveCapacity(capacity)
    }

    /// Builds a chain of segments holding `folios` in order and returns its first segment.
    public static func chain(of folios: [Folio], segmentCapacity: Int = FolioQueue.defaultCapacity) -> FolioQueue {
        let head = FolioQueue(capacity: segmentCapacity)
        var tail = head
        for folio in folios {
            if tail.isFull { tail = tail.appendSegment() }
            tail.folios.append(folio)
        }
        return head
    }

    /// The number of occupied slots.
    @inlinable public var slotCount: Int { folios.count }
    /// Whether every slot is occupied.
    public var isFull: Bool { folios.count == capacity }

    /// The folio in `slot`.
    @inlinable
    public subscript(slot: Int) -> Folio { folios[slot] }

    /// Puts `folio` in the next free slot.
    ///
    /// - Throws: ``MemoryError/segmentFull`` when every slot is taken.
    public func append(_ folio: Folio) throws(MemoryError) {
        guard !isFull else { throw .segmentFull }
        folios.append(folio)
    }

    /// Links a new empty segment after this one and returns it.
    @discardableResult
    public func appendSegment() -> FolioQueue {
        precondition(next == nil, "appendSegment() is for the last segment of a chain")
        let segment = FolioQueue(capacity: capacity)
        segment.previous = self
        next = segment
        return segment
    }
}
