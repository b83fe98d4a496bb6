#if RDMA
import CVerbs
import Glibc
import Verbs

/// A completion queue of an ``RDMACMDomain``, polled without a completion channel.
public final class RDMACMCompletionQueue: CompletionQueue, @unchecked Sendable {
    /// The domain; kept alive until the queue is destroyed.
    public let domain: RDMACMDomain
    /// The number of entries the queue holds (`cqe`, which may exceed what was asked for).
    public let capacity: Int
    var cq: UnsafeMutablePointer<ibv_cq>?
    static let batch = 16
    let entries: UnsafeMutablePointer<ibv_wc>

    init(domain: RDMACMDomain, cq: UnsafeMutablePointer<ibv_cq>) {
        self.domain = domain
        self.cq = cq
        self.capacity = Int(cq.pointee.cqe)
        entries = .allocate(capacity: Self.batch)
        entries.initialize(repeating: ibv_wc(), count: Self.batch)
    }

    /// Moves completions into `completions` (`ibv_poll_cq`); status and opcode keep
    /// their libibverbs values.
    public func poll(into completions: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        guard let cq else { throw VerbsError(.pollCompletionQueue, errno: EINVAL, "the completion queue was destroyed") }
        var moved = 0
        while moved < completions.count {
            let polled = Int(ibv_poll_cq(cq, Int32(min(Self.batch, completions.count - moved)), entries))
            guard polled >= 0 else { throw VerbsError(.pollCompletionQueue, errno: EIO, "ibv_poll_cq returned \(polled)") }
            for index in 0..<polled {
                let entry = entries[index]
                completions[moved + index] = WorkCompletion(
                    id: entry.wr_id, status: WorkCompletionStatus(rawValue: entry.status.rawValue) ?? .generalError,
                    opcode: WorkCompletionOpcode(rawValue: entry.opcode.rawValue) ?? .send, byteCount: Int(entry.byte_len),
                    immediateData: cverbs_wc_has_imm(entries + index) != 0 ? cverbs_wc_imm(entries + index) : nil,
                    queuePairNumber: entry.qp_num)
            }
            moved += polled
            if polled < Self.batch { break }
        }
        return moved
    }

    /// Destroys the queue (`ibv_destroy_cq`); a second call does nothing.
    public func close() throws(VerbsError) {
        guard let cq else { return }
        let status = ibv_destroy_cq(cq)
        guard status == 0 else { throw VerbsError(.destroyCompletionQueue, errno: status, "ibv_destroy_cq") }
        self.cq = nil
    }

    deinit {
        try? close()
        entries.deallocate()
    }
}
#endif
