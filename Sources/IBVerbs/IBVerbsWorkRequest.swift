#if RDMA
import CVerbs
import Verbs

extension SendWorkRequest {
    /// Calls `body` with the request as the `struct ibv_send_wr` that `ibv_post_send`
    /// takes. Its SGE list is ``sges`` itself (``SGE`` has the layout of
    /// `struct ibv_sge`), valid while `body` runs.
    package func withIBVWorkRequest<R, E: Error>(_ body: (inout ibv_send_wr) throws(E) -> R) throws(E) -> R {
        var wr = ibv_send_wr()
        fill(&wr)
        return try body(&wr)
    }

    /// Writes the request into `wr` (its `next` left `nil`); the SGE list is ``sges``
    /// itself, read by libibverbs as `struct ibv_sge` (``SGE`` has its layout), so `wr`
    /// is valid as long as the SGEs are.
    func fill(_ wr: inout ibv_send_wr) {
        wr = ibv_send_wr()
        wr.wr_id = id
        wr.num_sge = Int32(clamping: sges.count)
        wr.opcode = ibv_wr_opcode(rawValue: opcode.rawValue)
        wr.send_flags = flags.rawValue
        if opcode == .sendWithImmediate || opcode == .rdmaWriteWithImmediate {
            cverbs_send_wr_set_imm(&wr, immediateData)
        }
        if opcode.isRemoteAccess { cverbs_send_wr_set_rdma(&wr, remoteAddress, rkey) }
        wr.sg_list = sges.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).assumingMemoryBound(to: ibv_sge.self) }
    }
}

/// The `struct ibv_send_wr`s of chained posts, reused from post to post so that a
/// chain up to ``capacity`` requests long costs no allocation; a longer one takes a
/// temporary buffer. Used by one thread at a time (its queue pair's lock or contract).
final class IBVerbsSendChain: @unchecked Sendable {
    static let capacity = 64
    private let buffer = UnsafeMutablePointer<ibv_send_wr>.allocate(capacity: IBVerbsSendChain.capacity)

    init() { buffer.initialize(repeating: ibv_send_wr(), count: Self.capacity) }

    deinit { buffer.deallocate() }

    /// Links `requests` by `next` and posts them with one `ibv_post_send` on `qp`.
    func post(_ requests: UnsafeBufferPointer<SendWorkRequest>, on qp: UnsafeMutablePointer<ibv_qp>) throws(VerbsError) {
        guard !requests.isEmpty else { return }
        if requests.count <= Self.capacity {
            try post(requests, on: qp, into: buffer)
        } else {
            let chain = UnsafeMutablePointer<ibv_send_wr>.allocate(capacity: requests.count)
            defer { chain.deallocate() }
            chain.initialize(repeating: ibv_send_wr(), count: requests.count)
            try post(requests, on: qp, into: chain)
        }
    }

    private func post(_ requests: UnsafeBufferPointer<SendWorkRequest>, on qp: UnsafeMutablePointer<ibv_qp>,
                      into chain: UnsafeMutablePointer<ibv_send_wr>) throws(VerbsError) {
        for (index, request) in requests.enumerated() {
            request.fill(&chain[index])
            chain[index].next = index + 1 < requests.count ? chain + index + 1 : nil
        }
        try IBVerbsCalls.postSend(qp, chain: chain, count: requests.count)
    }
}

extension ReceiveWorkRequest {
    /// Calls `body` with the request as the `struct ibv_recv_wr` that `ibv_post_recv`
    /// takes, its SGE list being ``sges`` itself, valid while `body` runs.
    package func withIBVWorkRequest<R, E: Error>(_ body: (inout ibv_recv_wr) throws(E) -> R) throws(E) -> R {
        var wr = ibv_recv_wr()
        wr.wr_id = id
        wr.num_sge = Int32(clamping: sges.count)
        return try sges.withIBVSGEs { (list) throws(E) -> R in
            wr.sg_list = list
            return try body(&wr)
        }
    }
}

extension UnsafeBufferPointer where Element == SGE {
    /// Calls `body` with the SGEs as the `struct ibv_sge *` libibverbs takes (it only
    /// reads through it), or `nil` for none.
    func withIBVSGEs<R, E: Error>(_ body: (UnsafeMutablePointer<ibv_sge>?) throws(E) -> R) throws(E) -> R {
        guard let base = baseAddress else { return try body(nil) }
        return try UnsafeMutablePointer(mutating: base).withMemoryRebound(to: ibv_sge.self, capacity: count) {
            (list) throws(E) -> R in try body(list)
        }
    }
}
#endif
