/// A queue of work completions.
public protocol CompletionQueue: AnyObject, Sendable {
    /// The number of entries the queue holds.
    var capacity: Int { get }

    /// Moves up to `completions.count` completions, oldest first, into `completions`
    /// and returns how many it moved. Never blocks. The corresponding C function is
    /// `ibv_poll_cq`.
    func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int

    /// The channel the queue raises events on, or `nil` for a queue that is only polled.
    var channel: (any CompletionChannel)? { get }

    /// Arms the queue: the next completion that arrives (with `solicitedOnly`, the next
    /// solicited receive or error) raises one event on ``channel``. Completions already
    /// in the queue raise none, so poll once more after arming.
    /// The corresponding C function is `ibv_req_notify_cq`.
    /// - Throws: `EINVAL` for a queue without a channel or a destroyed queue.
    func requestNotification(solicitedOnly: Bool) throws(VerbsError)

    /// Whether an event for this queue was taken from its channel since the last call;
    /// clears the mark. ``CompletionChannel/takeEvents()`` sets it.
    func takeNotification() -> Bool

    /// Destroys the queue, first acknowledging the events taken for it that are not
    /// acknowledged yet. Every queue pair that reports to it must be destroyed first.
    /// The corresponding C function is `ibv_destroy_cq`.
    /// - Throws: `EBUSY` while a queue pair still reports to it.
    func close() throws(VerbsError)
}

extension CompletionQueue {
    /// The oldest completion, if there is one. The corresponding C function is
    /// `ibv_poll_cq` with one entry.
    public func poll() throws(VerbsError) -> WorkCompletion? {
        // A buffer of one full stride: pollers may copy whole strides, and a lone
        // variable is only `size` bytes long.
        var result: Result<WorkCompletion?, VerbsError> = .success(nil)
        withUnsafeTemporaryAllocation(of: WorkCompletion.self, capacity: 1) { buffer in
            buffer.initialize(repeating: WorkCompletion(id: 0, status: .success, opcode: .send, byteCount: 0, queuePairNumber: 0))
            result = Result { () throws(VerbsError) -> WorkCompletion? in
                try poll(into: buffer) == 1 ? buffer[0] : nil
            }
            buffer.deinitialize()
        }
        return try result.get()
    }
}
