/// A queue of work completions.
public protocol CompletionQueue: AnyObject, Sendable {
    /// The number of entries the queue holds.
    var capacity: Int { get }

    /// Moves up to `completions.count` completions, oldest first, into `completions`
    /// and returns how many it moved. Never blocks. The corresponding C function is
    /// `ibv_poll_cq`.
    func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int

    /// Destroys the queue. Every queue pair that reports to it must be destroyed first.
    /// The corresponding C function is `ibv_destroy_cq`.
    /// - Throws: `EBUSY` while a queue pair still reports to it.
    func close() throws(VerbsError)
}

extension CompletionQueue {
    /// The oldest completion, if there is one. The corresponding C function is
    /// `ibv_poll_cq` with one entry.
    public func poll() throws(VerbsError) -> WorkCompletion? {
        var completion = WorkCompletion(id: 0, status: .success, opcode: .send, byteCount: 0, queuePairNumber: 0)
        let polled = try withUnsafeMutablePointer(to: &completion) { (pointer) throws(VerbsError) -> Int in
            try poll(into: UnsafeMutableBufferPointer(start: pointer, count: 1))
        }
        return polled == 1 ? completion : nil
    }
}
