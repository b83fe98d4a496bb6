/// A pipe: a ring of page buffers, the memory behind a PIPE iterator.
///
/// A PIPE iterator is a destination only: writing through it appends buffers whose
/// pages come from the pipe's ``PagePool``; a reader takes buffers from the front.
/// Mutating a pipe from elsewhere while an iterator writes to it is a programmer error.
public final class PagePipe: @unchecked Sendable {
    /// One buffer of the ring: `length` bytes at `offset` in `page`.
    public struct Buffer: Sendable, Equatable {
        /// The page holding the bytes; the pipe owns it.
        public var page: Page
        /// The offset of the first byte in `page`.
        public var offset: Int
        /// The number of bytes in the buffer.
        public var length: Int
    }

    /// The pool pages are taken from and returned to.
    public let pool: PagePool
    /// The number of buffers the ring holds.
    public let capacity: Int
    @usableFromInline var ring: [Buffer]
    /// The number of buffers ever pushed (the ring's head).
    public private(set) var head = 0
    /// The number of buffers ever taken (the ring's tail).
    public private(set) var tail = 0

    /// Creates an empty pipe of `capacity` buffers (the kernel's default is 16).
    public init(pool: PagePool, capacity: Int = 16) {
        precondition(capacity > 0, "a pipe needs at least one buffer")
        self.pool = pool
        self.capacity = capacity
        self.ring = Array(repeating: Buffer(page: Page(frame: 0), offset: 0, length: 0), count: capacity)
    }

    deinit {
        while tail < head { pool.release(Folio(head: ring[tail % capacity].page, order: 0)); tail += 1 }
    }

    /// The number of buffers in the pipe.
    public var occupancy: Int { head - tail }

    /// The buffers in the pipe, oldest first.
    public var buffers: [Buffer] { (tail..<head).map { ring[$0 % capacity] } }

    /// Takes the oldest buffer's bytes out of the pipe, or `nil` when it is empty.
    public func read() -> [UInt8]? {
        guard tail < head else { return nil }
        let buffer = ring[tail % capacity]
        let bytes = Array(UnsafeRawBufferPointer(start: buffer.page.baseAddress + buffer.offset, count: buffer.length))
        pool.release(Folio(head: buffer.page, order: 0))
        tail += 1
        return bytes
    }

    /// The buffer at absolute position `position` (`tail..<head`).
    func buffer(at position: Int) -> Buffer { ring[position % capacity] }

    func setBuffer(_ buffer: Buffer, at position: Int) { ring[position % capacity] = buffer }

    /// Pushes a fresh page with an empty buffer; `nil` when the ring or the pool is full.
    func pushPage() -> Buffer? {
        guard occupancy < capacity, let folio = try? pool.allocateFolio(order: 0) else { return nil }
        let buffer = Buffer(page: folio.head, offset: 0, length: 0)
        ring[head % capacity] = buffer
        head += 1
        return buffer
    }

    /// Drops the newest buffer and returns its page to the pool.
    func popNewest() {
        precondition(head > tail, "the pipe is empty")
        head -= 1
        pool.release(Folio(head: ring[head % capacity].page, order: 0))
    }
}
