#if RDMA
import CVerbs
import Glibc
import Locking
import Verbs

/// A completion queue of an ``IBVerbs`` device, polled without a completion channel.
public final class IBVerbsCompletionQueue: CompletionQueue, @unchecked Sendable {
    /// The device; kept alive until the queue is gone.
    public let device: IBVerbs
    /// The entries the device granted (at least the capacity asked for).
    public let capacity: Int

    struct State {
        var cq: IBVerbsHandle<ibv_cq>?
        /// Where `ibv_poll_cq` writes, so that polling does not allocate.
        let entries: IBVerbsHandle<ibv_wc>
    }

    static let batch = 16
    let state: LockedValue<State>

    init(device: IBVerbs, cq: UnsafeMutablePointer<ibv_cq>) {
        self.device = device
        self.capacity = Int(cq.pointee.cqe)
        let entries = UnsafeMutablePointer<ibv_wc>.allocate(capacity: Self.batch)
        entries.initialize(repeating: ibv_wc(), count: Self.batch)
        self.state = LockedValue(State(cq: IBVerbsHandle(cq), entries: IBVerbsHandle(entries)))
    }

    /// The live `ibv_cq`, for creating queue pairs.
    func withCQ<R>(_ call: VerbsCall, _ body: (UnsafeMutablePointer<ibv_cq>) throws(VerbsError) -> R) throws(VerbsError) -> R {
        try state.withLock { (state) throws(VerbsError) -> R in
            guard let cq = state.cq else { throw VerbsError(call, errno: EINVAL, "the completion queue was destroyed") }
            return try body(cq.pointer)
        }
    }

    /// Moves completions into `completions`, converting each `struct ibv_wc`: the
    /// status and opcode keep their libibverbs values, immediate data comes back in
    /// host order. The corresponding C function is `ibv_poll_cq`.
    public func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        try state.withLock { (state) throws(VerbsError) -> Int in
            guard let cq = state.cq else {
                throw VerbsError(.pollCompletionQueue, errno: EINVAL, "the completion queue was destroyed")
            }
            let entries = state.entries.pointer
            var moved = 0
            while moved < completions.count {
                let polled = try IBVerbsCalls.pollCQ(cq.pointer, entries, count: min(Self.batch, completions.count - moved))
                for i in 0..<polled { completions[moved + i] = Self.completion(entries + i) }
                moved += polled
                if polled < Self.batch { break }
            }
            return moved
        }
    }

    static func completion(_ wc: UnsafePointer<ibv_wc>) -> WorkCompletion {
        let entry = wc.pointee
        return WorkCompletion(
            id: entry.wr_id, status: WorkCompletionStatus(rawValue: entry.status.rawValue) ?? .generalError,
            opcode: WorkCompletionOpcode(rawValue: entry.opcode.rawValue) ?? .send, byteCount: Int(entry.byte_len),
            immediateData: cverbs_wc_has_imm(wc) != 0 ? cverbs_wc_imm(wc) : nil, queuePairNumber: entry.qp_num)
    }

    /// Destroys the queue; a second call does nothing.
    /// - Throws: `EBUSY` (from the kernel) while a queue pair still reports to it.
    public func close() throws(VerbsError) {
        try state.withLock { (state) throws(VerbsError) in
            guard let cq = state.cq else { return }
            try IBVerbsCalls.destroyCQ(cq.pointer)
            state.cq = nil
        }
    }

    deinit {
        try? close()
        state.withLock { $0.entries.pointer.deallocate() }
    }
}
#endif
