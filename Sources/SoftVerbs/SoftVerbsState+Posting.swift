#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// State transitions and posting: what `ibv_modify_qp`, `ibv_post_send` and
/// `ibv_post_recv` check and record.
extension SoftVerbsState {
    // MARK: State transitions

    /// Moves queue pair `number` to `state`; RTR connects it to `remote`'s number and
    /// expects `remote`'s PSN, RTS sends from `packetSequenceNumber` on.
    mutating func modify(_ number: UInt32, to state: QueuePairState, remote: (number: UInt32, packetSequenceNumber: UInt32)?,
                         packetSequenceNumber: UInt32) throws(VerbsError) {
        let current = pairs[number]!.state
        switch (current, state) {
        case (_, .error):
            moveToError(number)
        case (_, .reset):
            pairs[number]!.sends = []
            pairs[number]!.receives = []
            pairs[number]!.sendSlots = 0
            pairs[number]!.receiveSlots = 0
            pairs[number]!.unsignalledRun = 0
            pairs[number]!.remote = nil
            pairs[number]!.receivePSN = nil
            pairs[number]!.sendPSN = nil
            pairs[number]!.state = .reset
        case (.reset, .initialized):
            pairs[number]!.state = state
        case (.initialized, .readyToReceive):
            guard let remote else {
                throw VerbsError(.modifyQueuePair, errno: EINVAL, "RTR needs the remote queue pair's endpoint")
            }
            pairs[number]!.remote = remote.number
            pairs[number]!.receivePSN = remote.packetSequenceNumber
            pairs[number]!.state = state
        case (.readyToReceive, .readyToSend):
            pairs[number]!.sendPSN = packetSequenceNumber
            pairs[number]!.state = state
        default:
            throw VerbsError(.modifyQueuePair, errno: EINVAL, "no transition from \(current) to \(state)")
        }
    }

    /// Moves a queue pair to the error state and flushes every outstanding request.
    mutating func moveToError(_ number: UInt32) {
        guard pairs[number] != nil else { return }
        pairs[number]!.state = .error
        let sends = pairs[number]!.sends
        let receives = pairs[number]!.receives
        pairs[number]!.sends = []
        pairs[number]!.receives = []
        for send in sends { completeSend(send, on: number, status: .workRequestFlushError) }
        for receive in receives {
            completeReceive(receive.id, on: number, status: .workRequestFlushError, opcode: .receive, byteCount: 0, immediateData: nil)
        }
    }

    // MARK: Posting

    mutating func postSend(_ number: UInt32, _ request: SendWorkRequest) throws(VerbsError) {
        let pair = pairs[number]!
        func refuse(_ errno: Int32, _ reason: String) -> VerbsError { VerbsError(.postSend, errno: errno, reason) }
        guard pair.state == .readyToSend || pair.state == .error else {
            throw refuse(EINVAL, "a queue pair in \(pair.state) cannot send")
        }
        guard request.sges.count <= pair.capabilities.maxSendSGEs else {
            throw refuse(EINVAL, "\(request.sges.count) SGEs exceed max_send_sge \(pair.capabilities.maxSendSGEs)")
        }
        let isInline = request.flags.contains(.inline)
        if isInline {
            guard request.opcode != .rdmaRead else { throw refuse(EINVAL, "an RDMA READ cannot be inline") }
            guard request.byteCount <= pair.capabilities.maxInlineData else {
                throw refuse(EINVAL, "\(request.byteCount) inline bytes exceed max_inline_data \(pair.capabilities.maxInlineData)")
            }
        }
        guard pair.sendSlots < pair.capabilities.maxSendWorkRequests else {
            throw refuse(ENOMEM, "the send queue holds \(pair.capabilities.maxSendWorkRequests) requests already")
        }
        if faults.postFails() { throw refuse(ENOMEM, "injected post failure") }
        var inlineData: [UInt8]?
        if isInline {
            var data: [UInt8] = []
            data.reserveCapacity(request.byteCount)
            for sge in request.sges {
                data.append(contentsOf: UnsafeRawBufferPointer(
                    start: UnsafeRawPointer(bitPattern: UInt(sge.address)), count: Int(sge.length)))
            }
            inlineData = data
        }
        let send = PendingSend(
            id: request.id, opcode: request.opcode, sges: Array(request.sges),
            signaled: request.flags.contains(.signaled) || pair.capabilities.signalsAll,
            solicited: request.flags.contains(.solicited),
            immediateData: request.immediateData, remoteAddress: request.remoteAddress, rkey: request.rkey,
            inlineData: inlineData)
        pairs[number]!.sendSlots += 1
        if pair.state == .error {
            completeSend(send, on: number, status: .workRequestFlushError)
        } else {
            pairs[number]!.sends.append(send)
            progress(number)
        }
    }

    mutating func postReceive(_ number: UInt32, _ request: ReceiveWorkRequest) throws(VerbsError) {
        let pair = pairs[number]!
        func refuse(_ errno: Int32, _ reason: String) -> VerbsError { VerbsError(.postReceive, errno: errno, reason) }
        guard pair.state != .reset else { throw refuse(EINVAL, "a queue pair in RESET cannot receive") }
        guard request.sges.count <= pair.capabilities.maxReceiveSGEs else {
            throw refuse(EINVAL, "\(request.sges.count) SGEs exceed max_recv_sge \(pair.capabilities.maxReceiveSGEs)")
        }
        guard pair.receiveSlots < pair.capabilities.maxReceiveWorkRequests else {
            throw refuse(ENOMEM, "the receive queue holds \(pair.capabilities.maxReceiveWorkRequests) requests already")
        }
        if faults.postFails() { throw refuse(ENOMEM, "injected post failure") }
        pairs[number]!.receiveSlots += 1
        if pair.state == .error {
            completeReceive(request.id, on: number, status: .workRequestFlushError, opcode: .receive, byteCount: 0, immediateData: nil)
            return
        }
        pairs[number]!.receives.append(PostedReceive(id: request.id, sges: Array(request.sges)))
        if let requester = pairs.first(where: { $0.value.remote == number && !$0.value.sends.isEmpty })?.key {
            progress(requester)
        }
    }
}
