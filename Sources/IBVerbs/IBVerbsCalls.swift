#if RDMA
import CVerbs
import Glibc
import Verbs

/// The one seam between RDMASGE and libibverbs/librdmacm: one function per C call,
/// each turning the C convention for failure (a null pointer or -1 with `errno`, or a
/// returned error number) into a ``VerbsError`` that carries the `errno` and the call.
///
/// Nothing else in the IBVerbs backend calls C, and in debug builds a test may stand in
/// for all of it (``IBVerbsMockingDriver``: each function asks the driver first).
/// ``VerbsCall`` names the libibverbs
/// functions of the verbs protocols; calls outside that set (device queries, GID
/// table, librdmacm) report the nearest protocol call (`ibv_open_device` for device
/// and port queries, `ibv_modify_qp` for connection management) and name the exact C
/// function at the start of ``VerbsError/reason``.
enum IBVerbsCalls {
    /// An error from `function`, reported as `call`, with `code`.
    static func failure(_ call: VerbsCall, code: Int32, _ detail: String = "") -> VerbsError {
        let text = String(cString: strerror(code))
        return VerbsError(call, errno: code, "\(text)\(detail.isEmpty ? "" : " (\(detail))")")
    }

    /// The error number of a call that returned `status`: libibverbs returns the number
    /// itself from most calls, some providers return it negated, older paths return -1
    /// and set `errno`.
    static func code(returned status: Int32) -> Int32 {
        if status == -1 { return errno == 0 ? EIO : errno }
        return status < 0 ? -status : status
    }

    /// The code of a call that returned a null pointer.
    static var nullCode: Int32 { errno == 0 ? ENOMEM : errno }

    // MARK: Devices

    /// `ibv_get_device_list`, copied to names and pointers; `ibv_free_device_list` is
    /// called by the closure's caller through ``freeDeviceList(_:)``.
    static func getDeviceList() throws(VerbsError) -> (list: UnsafeMutablePointer<UnsafeMutablePointer<ibv_device>?>, count: Int) {
        var count: Int32 = 0
        errno = 0
        if let mock {
            guard mock.status("ibv_get_device_list") == 0 else { throw failure(.getDeviceList, code: nullCode) }
            return (mock.deviceList(), mock.deviceNames.count)
        }
        guard let list = ibv_get_device_list(&count) else {
            throw failure(.getDeviceList, code: nullCode)
        }
        return (list, Int(count))
    }

    /// `ibv_free_device_list`.
    static func freeDeviceList(_ list: UnsafeMutablePointer<UnsafeMutablePointer<ibv_device>?>) {
        if mocked("ibv_free_device_list") == nil { ibv_free_device_list(list) }
    }

    /// `ibv_get_device_name`.
    static func deviceName(_ device: UnsafeMutablePointer<ibv_device>) -> String {
        if mocked("ibv_get_device_name") != nil {
            return withUnsafeBytes(of: device.pointee.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return ibv_get_device_name(device).map { String(cString: $0) } ?? ""
    }

    /// `ibv_open_device`.
    static func openDevice(_ device: UnsafeMutablePointer<ibv_device>) throws(VerbsError) -> UnsafeMutablePointer<ibv_context> {
        errno = 0
        guard let context = mocked("ibv_open_device", ibv_context.self) ?? ibv_open_device(device) else {
            throw failure(.openDevice, code: nullCode)
        }
        return context
    }

    /// `ibv_close_device`.
    static func closeDevice(_ context: UnsafeMutablePointer<ibv_context>) -> Int32 {
        let status = mocked("ibv_close_device") ?? ibv_close_device(context)
        return status == 0 ? 0 : code(returned: status)
    }

    /// `ibv_query_device`.
    static func queryDevice(_ context: UnsafeMutablePointer<ibv_context>) throws(VerbsError) -> ibv_device_attr {
        var attributes = mock?.deviceAttributes ?? ibv_device_attr()
        let status = mocked("ibv_query_device") ?? ibv_query_device(context, &attributes)
        guard status == 0 else { throw failure(.queryDevice, code: code(returned: status)) }
        return attributes
    }

    /// `ibv_query_port` (a macro; through the shim).
    static func queryPort(_ context: UnsafeMutablePointer<ibv_context>, port: UInt8) throws(VerbsError) -> ibv_port_attr {
        var attributes = mock?.portAttributes ?? ibv_port_attr()
        let status = mocked("ibv_query_port") ?? cverbs_query_port(context, port, &attributes)
        guard status == 0 else {
            throw failure(.queryPort, code: code(returned: status), "port \(port)")
        }
        return attributes
    }

    /// `ibv_query_gid_table`: every valid GID entry of every port, up to `capacity`.
    ///
    /// The kernel takes the answer buffer's size in 16 bits, so a buffer of 64 KiB or
    /// more (2048 entries: rxe has 1024 per port) is refused with `EINVAL`; the
    /// capacity is capped below that.
    static func queryGIDTable(_ context: UnsafeMutablePointer<ibv_context>, capacity: Int) throws(VerbsError) -> [ibv_gid_entry] {
        if let mock {
            let status = mock.status("ibv_query_gid_table")
            guard status == 0 else { throw failure(.queryGIDTable, code: code(returned: status)) }
            return Array(mock.gidTable.prefix(capacity))
        }
        let limit = Int(UInt16.max) / MemoryLayout<ibv_gid_entry>.stride
        var entries = [ibv_gid_entry](repeating: ibv_gid_entry(), count: min(max(capacity, 1), limit))
        let count = entries.withUnsafeMutableBufferPointer { ibv_query_gid_table(context, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw failure(.queryGIDTable, code: code(returned: Int32(count))) }
        return Array(entries[..<count])
    }

    /// `ibv_query_gid`.
    static func queryGID(_ context: UnsafeMutablePointer<ibv_context>, port: UInt8, index: Int) throws(VerbsError) -> ibv_gid {
        var gid = mock?.gidTable.first?.gid ?? ibv_gid()
        let status = mocked("ibv_query_gid") ?? ibv_query_gid(context, port, Int32(index), &gid)
        guard status == 0 else {
            throw failure(.queryGID, code: code(returned: status), "port \(port) index \(index)")
        }
        return gid
    }

    /// `ibv_fork_init`.
    static func forkInit() throws(VerbsError) {
        let status = mocked("ibv_fork_init") ?? ibv_fork_init()
        guard status == 0 else { throw failure(.forkInit, code: code(returned: status)) }
    }

    /// `ibv_is_fork_initialized`.
    static func forkStatus() -> IBVerbs.ForkProtection {
        if mocked("ibv_is_fork_initialized") != nil { return .disabled }
        return IBVerbs.ForkProtection(rawValue: ibv_is_fork_initialized().rawValue) ?? .disabled
    }

    // MARK: Protection domains and memory regions

    /// `ibv_alloc_pd`.
    static func allocatePD(_ context: UnsafeMutablePointer<ibv_context>) throws(VerbsError) -> UnsafeMutablePointer<ibv_pd> {
        errno = 0
        guard let pd = mocked("ibv_alloc_pd", ibv_pd.self) ?? ibv_alloc_pd(context) else {
            throw failure(.allocateProtectionDomain, code: nullCode)
        }
        return pd
    }

    /// `ibv_dealloc_pd`.
    static func deallocatePD(_ pd: UnsafeMutablePointer<ibv_pd>) throws(VerbsError) {
        let status = mocked("ibv_dealloc_pd") ?? ibv_dealloc_pd(pd)
        guard status == 0 else { throw failure(.deallocateProtectionDomain, code: code(returned: status)) }
    }

    /// `ibv_reg_mr_iova2` (the path the `ibv_reg_mr` macro takes), with `iova` equal
    /// to the address so that peers name the memory by its virtual address.
    static func registerMR(_ pd: UnsafeMutablePointer<ibv_pd>, address: UInt, length: Int,
                           access: UInt32) throws(VerbsError) -> UnsafeMutablePointer<ibv_mr> {
        errno = 0
        guard let mr = mocked("ibv_reg_mr", ibv_mr.self)
                ?? cverbs_reg_mr_iova2(pd, UnsafeMutableRawPointer(bitPattern: address), length, UInt64(address), access) else {
            throw failure(.registerMemory, code: nullCode,
                          "\(length) bytes at 0x\(String(address, radix: 16))")
        }
        return mr
    }

    /// `ibv_dereg_mr`.
    static func deregisterMR(_ mr: UnsafeMutablePointer<ibv_mr>) throws(VerbsError) {
        let status = mocked("ibv_dereg_mr") ?? ibv_dereg_mr(mr)
        guard status == 0 else { throw failure(.deregisterMemory, code: code(returned: status)) }
    }

    // MARK: Completion queues

    /// `ibv_create_cq` that raises its events on `channel` (none when `nil`) and names
    /// `context` in them.
    static func createCQ(_ context: UnsafeMutablePointer<ibv_context>, entries: Int, eventContext: UnsafeMutableRawPointer?,
                         channel: UnsafeMutablePointer<ibv_comp_channel>?) throws(VerbsError) -> UnsafeMutablePointer<ibv_cq> {
        errno = 0
        guard let cq = mocked("ibv_create_cq", ibv_cq.self) ?? ibv_create_cq(context, Int32(clamping: entries), eventContext, channel, 0) else {
            throw failure(.createCompletionQueue, code: nullCode, "\(entries) entries")
        }
        return cq
    }

    /// `ibv_req_notify_cq` (a static inline; through the shim).
    static func requestNotification(_ cq: UnsafeMutablePointer<ibv_cq>, solicitedOnly: Bool) throws(VerbsError) {
        let status = mocked("ibv_req_notify_cq") ?? cverbs_req_notify_cq(cq, solicitedOnly ? 1 : 0)
        guard status == 0 else { throw failure(.requestNotification, code: code(returned: status)) }
    }

    /// `ibv_create_comp_channel`.
    static func createCompletionChannel(_ context: UnsafeMutablePointer<ibv_context>) throws(VerbsError) -> UnsafeMutablePointer<ibv_comp_channel> {
        errno = 0
        guard let channel = mocked("ibv_create_comp_channel", ibv_comp_channel.self) ?? ibv_create_comp_channel(context) else {
            throw failure(.createCompletionChannel, code: nullCode)
        }
        return channel
    }

    /// `ibv_destroy_comp_channel`.
    static func destroyCompletionChannel(_ channel: UnsafeMutablePointer<ibv_comp_channel>) throws(VerbsError) {
        let status = mocked("ibv_destroy_comp_channel") ?? ibv_destroy_comp_channel(channel)
        guard status == 0 else {
            throw failure(.destroyCompletionChannel, code: code(returned: status), "completion queues still use the channel")
        }
    }

    /// `fcntl(F_SETFL)` adding `O_NONBLOCK` to `descriptor`, reported as `call`.
    static func setNonBlocking(_ descriptor: Int32, _ call: VerbsCall) throws(VerbsError) {
        let flags = mocked("fcntl") ?? fcntl(descriptor, F_GETFL)
        guard flags >= 0, (mocked("fcntl") ?? fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)) == 0 else {
            throw failure(call, code: errno, "fcntl O_NONBLOCK on descriptor \(descriptor)")
        }
    }

    /// `ibv_get_cq_event` on a non-blocking channel: the `cq_context` of the queue
    /// that raised the event, or `nil` when none waits (`EAGAIN`).
    static func getCQEvent(_ channel: UnsafeMutablePointer<ibv_comp_channel>) throws(VerbsError) -> UnsafeMutableRawPointer? {
        var cq: UnsafeMutablePointer<ibv_cq>?
        var context: UnsafeMutableRawPointer?
        errno = 0
        guard (mocked("ibv_get_cq_event") ?? ibv_get_cq_event(channel, &cq, &context)) == 0 else {
            let error = errno
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw failure(.getCompletionEvent, code: error == 0 ? EIO : error)
        }
        return context
    }

    /// `ibv_ack_cq_events`.
    static func acknowledgeCQEvents(_ cq: UnsafeMutablePointer<ibv_cq>, count: UInt32) {
        if mocked("ibv_ack_cq_events") == nil { ibv_ack_cq_events(cq, count) }
    }

    /// `ibv_get_async_event` on a non-blocking context, then `ibv_ack_async_event`:
    /// the event's type, queue pair number and port, or `nil` when none waits (`EAGAIN`).
    static func takeAsyncEvent(_ context: UnsafeMutablePointer<ibv_context>) throws(VerbsError)
        -> (type: ibv_event_type, queuePairNumber: UInt32, port: UInt8)? {
        var event = ibv_async_event()
        errno = 0
        guard (mocked("ibv_get_async_event") ?? ibv_get_async_event(context, &event)) == 0 else {
            let error = errno
            if error == EAGAIN || error == EWOULDBLOCK { return nil }
            throw failure(.getAsyncEvent, code: error == 0 ? EIO : error)
        }
        let isQueuePairEvent = [IBV_EVENT_QP_FATAL, IBV_EVENT_QP_REQ_ERR, IBV_EVENT_QP_ACCESS_ERR, IBV_EVENT_COMM_EST,
                                IBV_EVENT_SQ_DRAINED, IBV_EVENT_PATH_MIG, IBV_EVENT_PATH_MIG_ERR,
                                IBV_EVENT_QP_LAST_WQE_REACHED].contains(event.event_type)
        let result = (event.event_type, isQueuePairEvent ? cverbs_async_event_qp_num(&event) : 0, cverbs_async_event_port(&event))
        if mocked("ibv_ack_async_event") == nil { ibv_ack_async_event(&event) }
        return result
    }

    /// `ibv_destroy_cq`.
    static func destroyCQ(_ cq: UnsafeMutablePointer<ibv_cq>) throws(VerbsError) {
        let status = mocked("ibv_destroy_cq") ?? ibv_destroy_cq(cq)
        guard status == 0 else { throw failure(.destroyCompletionQueue, code: code(returned: status)) }
    }

    /// `ibv_poll_cq`.
    @inline(__always)
    static func pollCQ(_ cq: UnsafeMutablePointer<ibv_cq>, _ entries: UnsafeMutablePointer<ibv_wc>, count: Int) throws(VerbsError) -> Int {
        let polled = mocked("ibv_poll_cq") ?? ibv_poll_cq(cq, Int32(clamping: count), entries)
        guard polled >= 0 else { throw failure(.pollCompletionQueue, code: code(returned: polled)) }
        return Int(polled)
    }

    // MARK: Queue pairs

    /// `ibv_create_qp`; `attributes.cap` holds what the device granted afterwards.
    static func createQP(_ pd: UnsafeMutablePointer<ibv_pd>, _ attributes: inout ibv_qp_init_attr) throws(VerbsError) -> UnsafeMutablePointer<ibv_qp> {
        errno = 0
        guard let qp = mocked("ibv_create_qp", ibv_qp.self) ?? ibv_create_qp(pd, &attributes) else {
            throw failure(.createQueuePair, code: nullCode)
        }
        return qp
    }

    /// `ibv_modify_qp`.
    static func modifyQP(_ qp: UnsafeMutablePointer<ibv_qp>, _ attributes: inout ibv_qp_attr, mask: Int32,
                         _ detail: String) throws(VerbsError) {
        let status = mocked("ibv_modify_qp") ?? ibv_modify_qp(qp, &attributes, mask)
        guard status == 0 else { throw failure(.modifyQueuePair, code: code(returned: status), detail) }
    }

    /// `ibv_query_qp` for the state only.
    static func queryQPState(_ qp: UnsafeMutablePointer<ibv_qp>) throws(VerbsError) -> ibv_qp_state {
        var attributes = ibv_qp_attr()
        var initial = ibv_qp_init_attr()
        let status = mocked("ibv_query_qp") ?? ibv_query_qp(qp, &attributes, Int32(IBV_QP_STATE.rawValue), &initial)
        guard status == 0 else { throw failure(.queryQueuePair, code: code(returned: status)) }
        return attributes.qp_state
    }

    /// `ibv_destroy_qp`.
    static func destroyQP(_ qp: UnsafeMutablePointer<ibv_qp>) throws(VerbsError) {
        let status = mocked("ibv_destroy_qp") ?? ibv_destroy_qp(qp)
        guard status == 0 else { throw failure(.destroyQueuePair, code: code(returned: status)) }
    }

    /// `ibv_post_send` of one request.
    @inline(__always)
    static func postSend(_ qp: UnsafeMutablePointer<ibv_qp>, _ request: inout ibv_send_wr) throws(VerbsError) {
        var bad: UnsafeMutablePointer<ibv_send_wr>?
        let status = mocked("ibv_post_send") ?? ibv_post_send(qp, &request, &bad)
        guard status == 0 else { throw failure(.postSend, code: code(returned: status)) }
    }

    /// `ibv_post_send` of the chain of `count` requests at `chain`, linked by `next`;
    /// the error's `VerbsError.failedRequest` is the position of the refused one.
    static func postSend(_ qp: UnsafeMutablePointer<ibv_qp>, chain: UnsafeMutablePointer<ibv_send_wr>, count: Int) throws(VerbsError) {
        var bad: UnsafeMutablePointer<ibv_send_wr>?
        let status = mocked("ibv_post_send") ?? ibv_post_send(qp, chain, &bad)
        guard status == 0 else {
            let position = bad.map { chain.distance(to: $0) }.flatMap { (0..<count).contains($0) ? $0 : nil } ?? 0
            var error = failure(.postSend, code: code(returned: status), "a chain of \(count)")
            error.failedRequest = position
            throw error
        }
    }

    /// `ibv_post_recv` of one request.
    @inline(__always)
    static func postReceive(_ qp: UnsafeMutablePointer<ibv_qp>, _ request: inout ibv_recv_wr) throws(VerbsError) {
        var bad: UnsafeMutablePointer<ibv_recv_wr>?
        let status = mocked("ibv_post_recv") ?? ibv_post_recv(qp, &request, &bad)
        guard status == 0 else { throw failure(.postReceive, code: code(returned: status)) }
    }
}
#endif
