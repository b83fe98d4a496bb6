/// The work completions of one queue as an asynchronous sequence: the `async` form of
/// ``CompletionQueue/wait(into:timeout:solicitedOnly:interruption:)``.
///
/// Each step polls the queue; when it is empty the step arms it, polls again, and
/// suspends until the queue's channel raises an event for it, on a
/// ``CompletionEventLoop``: no thread blocks and no core spins. Cancelling the
/// iterating task ends the sequence (the step returns `nil`); completions not yet
/// returned stay in the queue for the next poll. An error from the queue ends the
/// sequence with that error.
///
/// Iterate one sequence of a queue at a time; completions are not shared between
/// iterators.
public struct WorkCompletions<Queue: CompletionQueue>: AsyncSequence, Sendable {
    /// The queue whose completions the sequence yields.
    public let queue: Queue
    /// The loop that watches the queue's channel.
    public let loop: CompletionEventLoop
    /// Whether a suspended step wakes only for solicited receives and errors.
    public let solicitedOnly: Bool
    /// The most completions one poll moves.
    let batch: Int

    /// Yields completions one by one, polling a batch at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: WorkCompletions
        private var buffer: [WorkCompletion] = []
        private var count = 0
        private var next = 0

        init(sequence: WorkCompletions) { self.sequence = sequence }

        /// The next completion; `nil` once the task is cancelled.
        public mutating func next() async throws(VerbsError) -> WorkCompletion? {
            while true {
                if next < count {
                    defer { next += 1 }
                    return buffer[next]
                }
                if Task.isCancelled { return nil }
                if try refill() { continue }
                try sequence.queue.requestNotification(solicitedOnly: sequence.solicitedOnly)
                if try refill() { continue }
                guard let channel = sequence.queue.channel else {
                    preconditionFailure("a completion queue without a channel cannot be awaited; poll it")
                }
                let queue = sequence.queue
                switch await sequence.loop.wait(on: channel.fileDescriptor, drain: { () throws(VerbsError) in
                    _ = try channel.takeEvents()
                }, until: { queue.takeNotification() }) {
                case .ready: continue
                case .cancelled: return nil
                case .failed(let error): throw error
                }
            }
        }

        /// Polls a batch into the buffer; whether it found any.
        private mutating func refill() throws(VerbsError) -> Bool {
            if buffer.isEmpty {
                buffer = Array(repeating: WorkCompletion(id: 0, status: .success, opcode: .send, byteCount: 0, queuePairNumber: 0),
                               count: sequence.batch)
            }
            count = try buffer.withUnsafeMutableBufferPointer { (buffer) throws(VerbsError) in
                try sequence.queue.poll(into: buffer)
            }
            next = 0
            return count > 0
        }
    }

    /// An iterator over the queue's completions.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }
}

extension CompletionQueue {
    /// The queue's completions as an asynchronous sequence that waits on `loop`
    /// without blocking a thread; see ``WorkCompletions``.
    /// - Precondition: The queue was created with a channel.
    public func completions(on loop: CompletionEventLoop = .shared, solicitedOnly: Bool = false) -> WorkCompletions<Self> {
        WorkCompletions(queue: self, loop: loop, solicitedOnly: solicitedOnly, batch: 16)
    }

    /// The next completion, awaited without blocking a thread; `nil` when the task is
    /// cancelled first. Arms, re-polls and suspends as ``WorkCompletions`` does.
    public func nextCompletion(on loop: CompletionEventLoop = .shared, solicitedOnly: Bool = false) async throws(VerbsError) -> WorkCompletion? {
        // A batch of one: nothing is polled that this call would not return.
        var iterator = WorkCompletions(queue: self, loop: loop, solicitedOnly: solicitedOnly, batch: 1).makeAsyncIterator()
        return try await iterator.next()
    }
}
