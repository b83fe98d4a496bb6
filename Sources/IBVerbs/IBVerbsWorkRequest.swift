#if RDMA
import CVerbs
import Verbs

extension SendWorkRequest {
    /// Calls `body` with the request as the `struct ibv_send_wr` that `ibv_post_send`
    /// takes. Its SGE list is ``sges`` itself (``SGE`` has the layout of
    /// `struct ibv_sge`), valid while `body` runs.
    package func withIBVWorkRequest<R, E: Error>(_ body: (inout ibv_send_wr) throws(E) -> R) throws(E) -> R {
        var wr = ibv_send_wr()
        wr.wr_id = id
        wr.num_sge = Int32(clamping: sges.count)
        wr.opcode = ibv_wr_opcode(rawValue: opcode.rawValue)
        wr.send_flags = flags.rawValue
        if opcode == .sendWithImmediate || opcode == .rdmaWriteWithImmediate {
            cverbs_send_wr_set_imm(&wr, immediateData)
        }
        if opcode.isRemoteAccess { cverbs_send_wr_set_rdma(&wr, remoteAddress, rkey) }
        return try sges.withIBVSGEs { (list) throws(E) -> R in
            wr.sg_list = list
            return try body(&wr)
        }
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
