// rxe harness smoke test: proves that a Swift binary built on the host runs in the
// guest and drives soft-RoCE through libibverbs. Opens the device, checks the port,
// registers two MRs and does one RDMA WRITE between two RC QPs on the same device
// (raw verbs, GID addressing), then compares the bytes.
//
// Device and GID index come from the harness (E2E_RDMA_DEVICE, E2E_GID_INDEX);
// the defaults are rxe0 and 1 (::ffff:192.0.2.1, RoCE v2, in the guest).
// Prints PASS:/FAIL: lines and a closing "N passed, N failed"; exits 1 on failure.
import Glibc

struct Tally {
    var passed = 0
    var failed = 0

    mutating func check(_ ok: Bool, _ what: String) {
        if ok { passed += 1 } else { failed += 1 }
        say("\(ok ? "PASS" : "FAIL"): \(what)")
    }

    /// Prints the closing line and exits; used at the end and when a failed step
    /// leaves nothing to test after it.
    func finish() -> Never {
        say("\(passed) passed, \(failed) failed")
        exit(failed == 0 ? 0 : 1)
    }
}

/// stdout is a pipe in the guest: flush each line so the console keeps up.
func say(_ s: String) {
    print(s)
    fflush(nil)  // all streams; `stdout` is a C global Swift 6 will not touch
}

func environment(_ name: String, default value: String) -> String {
    getenv(name).map { String(cString: $0) } ?? value
}

/// The sysfs spelling of a GID: eight groups of four hex digits.
func gidText(_ bytes: [UInt8]) -> String {
    stride(from: 0, to: bytes.count, by: 2).map { i in
        let group = String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16)
        return String(repeating: "0", count: 4 - group.count) + group
    }.joined(separator: ":")
}

func errnoText() -> String { String(cString: strerror(errno)) }

/// Moves a QP through INIT, RTR and RTS towards `remoteQPN` on the same port, using
/// the GID at `gidIndex` as both source and destination (one device, two QPs).
func connect(_ qp: UnsafeMutablePointer<ibv_qp>, to remoteQPN: UInt32, gid: ibv_gid,
             gidIndex: UInt8, mtu: ibv_mtu) -> String? {
    var attr = ibv_qp_attr()
    attr.qp_state = IBV_QPS_INIT
    attr.pkey_index = 0
    attr.port_num = 1
    attr.qp_access_flags = IBV_ACCESS_LOCAL_WRITE.rawValue | IBV_ACCESS_REMOTE_WRITE.rawValue
    var mask = IBV_QP_STATE.rawValue | IBV_QP_PKEY_INDEX.rawValue | IBV_QP_PORT.rawValue
        | IBV_QP_ACCESS_FLAGS.rawValue
    if ibv_modify_qp(qp, &attr, Int32(mask)) != 0 { return "INIT: \(errnoText())" }

    attr = ibv_qp_attr()
    attr.qp_state = IBV_QPS_RTR
    attr.path_mtu = mtu
    attr.dest_qp_num = remoteQPN
    attr.rq_psn = 0
    attr.max_dest_rd_atomic = 1
    attr.min_rnr_timer = 12
    attr.ah_attr.is_global = 1
    attr.ah_attr.grh.dgid = gid
    attr.ah_attr.grh.sgid_index = gidIndex
    attr.ah_attr.grh.hop_limit = 1
    attr.ah_attr.port_num = 1
    mask = IBV_QP_STATE.rawValue | IBV_QP_AV.rawValue | IBV_QP_PATH_MTU.rawValue
        | IBV_QP_DEST_QPN.rawValue | IBV_QP_RQ_PSN.rawValue | IBV_QP_MAX_DEST_RD_ATOMIC.rawValue
        | IBV_QP_MIN_RNR_TIMER.rawValue
    if ibv_modify_qp(qp, &attr, Int32(mask)) != 0 { return "RTR: \(errnoText())" }

    attr = ibv_qp_attr()
    attr.qp_state = IBV_QPS_RTS
    attr.timeout = 14
    attr.retry_cnt = 7
    attr.rnr_retry = 7
    attr.sq_psn = 0
    attr.max_rd_atomic = 1
    mask = IBV_QP_STATE.rawValue | IBV_QP_TIMEOUT.rawValue | IBV_QP_RETRY_CNT.rawValue
        | IBV_QP_RNR_RETRY.rawValue | IBV_QP_SQ_PSN.rawValue | IBV_QP_MAX_QP_RD_ATOMIC.rawValue
    if ibv_modify_qp(qp, &attr, Int32(mask)) != 0 { return "RTS: \(errnoText())" }
    return nil
}

@main
enum RxeSmoke {
    static func main() {
        var t = Tally()
        let deviceName = environment("E2E_RDMA_DEVICE", default: "rxe0")
        let gidIndex = Int32(environment("E2E_GID_INDEX", default: "1")) ?? 1
        let length = 64 * 1024

        // ---- device
        var count: Int32 = 0
        guard let list = ibv_get_device_list(&count) else {
            t.check(false, "ibv_get_device_list: \(errnoText())")
            t.finish()
        }
        var device: UnsafeMutablePointer<ibv_device>?
        for i in 0..<Int(count) where String(cString: ibv_get_device_name(list[i])) == deviceName {
            device = list[i]
        }
        t.check(device != nil, "device \(deviceName) among \(count) RDMA device(s)")
        guard let device, let context = ibv_open_device(device) else {
            if device != nil { t.check(false, "ibv_open_device \(deviceName): \(errnoText())") }
            t.finish()
        }

        // ---- port and GID
        var port = ibv_port_attr()
        let portRC = smoke_query_port(context, 1, &port)
        t.check(portRC == 0 && port.state == IBV_PORT_ACTIVE,
                "port 1 ACTIVE (rc=\(portRC) state=\(port.state.rawValue) active_mtu=\(port.active_mtu.rawValue))")
        var gid = ibv_gid()
        let gidRC = ibv_query_gid(context, 1, gidIndex, &gid)
        let gidBytes = withUnsafeBytes(of: gid.raw) { Array($0) }
        t.check(gidRC == 0 && gidBytes.contains { $0 != 0 },
                "GID[\(gidIndex)] = \(gidText(gidBytes))")

        // ---- PD, buffers, MRs, CQ, QPs
        guard let pd = ibv_alloc_pd(context) else {
            t.check(false, "ibv_alloc_pd: \(errnoText())")
            t.finish()
        }
        var rawSource: UnsafeMutableRawPointer?
        var rawTarget: UnsafeMutableRawPointer?
        guard posix_memalign(&rawSource, 4096, length) == 0, let source = rawSource,
              posix_memalign(&rawTarget, 4096, length) == 0, let target = rawTarget else {
            t.check(false, "posix_memalign of 2 × \(length) bytes")
            t.finish()
        }
        let sourceBytes = source.bindMemory(to: UInt8.self, capacity: length)
        for i in 0..<length { sourceBytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        memset(target, 0, length)
        let access = Int32(IBV_ACCESS_LOCAL_WRITE.rawValue | IBV_ACCESS_REMOTE_WRITE.rawValue)
        let sourceMR = smoke_reg_mr(pd, source, length, access)
        let targetMR = smoke_reg_mr(pd, target, length, access)
        t.check(sourceMR != nil && targetMR != nil, "ibv_reg_mr of 2 × \(length) bytes")
        let cq = ibv_create_cq(context, 16, nil, nil, 0)
        var qpInit = ibv_qp_init_attr()
        qpInit.send_cq = cq
        qpInit.recv_cq = cq
        qpInit.qp_type = IBV_QPT_RC
        qpInit.cap.max_send_wr = 4
        qpInit.cap.max_recv_wr = 4
        qpInit.cap.max_send_sge = 1
        qpInit.cap.max_recv_sge = 1
        let writer = cq == nil ? nil : ibv_create_qp(pd, &qpInit)
        let peer = cq == nil ? nil : ibv_create_qp(pd, &qpInit)
        t.check(cq != nil && writer != nil && peer != nil, "CQ and two RC QPs created")
        guard let sourceMR, let targetMR, let cq, let writer, let peer else { t.finish() }

        // ---- connect and write
        let mtu = port.active_mtu
        let problem = connect(writer, to: peer.pointee.qp_num, gid: gid, gidIndex: UInt8(gidIndex), mtu: mtu)
            ?? connect(peer, to: writer.pointee.qp_num, gid: gid, gidIndex: UInt8(gidIndex), mtu: mtu)
        t.check(problem == nil, "QPs \(writer.pointee.qp_num) <-> \(peer.pointee.qp_num) in RTS"
                + (problem.map { " (\($0))" } ?? ""))
        if problem == nil {
            let sge = UnsafeMutablePointer<ibv_sge>.allocate(capacity: 1)
            defer { sge.deallocate() }
            sge.initialize(to: ibv_sge(addr: UInt64(UInt(bitPattern: source)), length: UInt32(length),
                                       lkey: sourceMR.pointee.lkey))
            var wr = ibv_send_wr()
            wr.wr_id = 0x5157
            wr.sg_list = sge
            wr.num_sge = 1
            wr.opcode = IBV_WR_RDMA_WRITE
            wr.send_flags = IBV_SEND_SIGNALED.rawValue
            wr.wr.rdma.remote_addr = UInt64(UInt(bitPattern: target))
            wr.wr.rdma.rkey = targetMR.pointee.rkey
            var bad: UnsafeMutablePointer<ibv_send_wr>?
            let postRC = ibv_post_send(writer, &wr, &bad)
            t.check(postRC == 0, "ibv_post_send RDMA WRITE \(length) bytes (rc=\(postRC))")

            // Poll for up to 10 s: TCG is slow, but a lost completion must not hang.
            var wc = ibv_wc()
            var polled: Int32 = 0
            var start = timespec(), now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            repeat {
                polled = ibv_poll_cq(cq, 1, &wc)
                if polled != 0 { break }
                usleep(1000)
                clock_gettime(CLOCK_MONOTONIC, &now)
            } while postRC == 0 && now.tv_sec - start.tv_sec < 10
            t.check(polled == 1 && wc.status == IBV_WC_SUCCESS && wc.wr_id == 0x5157
                        && wc.opcode == IBV_WC_RDMA_WRITE,
                    "completion: polled=\(polled) status=\(String(cString: ibv_wc_status_str(wc.status)))")
            t.check(memcmp(source, target, length) == 0, "target bytes equal source bytes after RDMA WRITE")
        }

        // ---- release in reverse order of creation
        var released = ibv_destroy_qp(peer) == 0
        released = ibv_destroy_qp(writer) == 0 && released
        released = ibv_destroy_cq(cq) == 0 && released
        released = ibv_dereg_mr(targetMR) == 0 && released
        released = ibv_dereg_mr(sourceMR) == 0 && released
        released = ibv_dealloc_pd(pd) == 0 && released
        released = ibv_close_device(context) == 0 && released
        ibv_free_device_list(list)
        free(source)
        free(target)
        t.check(released, "all verbs resources released")
        t.finish()
    }
}
