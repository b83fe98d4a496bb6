import IterExtract
import RDMASGE

extension SMBDirectConnection {
    /// Sends one upper-layer message: the bytes of `prefix` (an SMB2 header and
    /// request, say) followed by the bytes of `payload`, fragmented into as many
    /// messages as needed, and waits until every fragment has been sent.
    ///
    /// Each message is built as the kernel's SMB client builds it: SGE 0 is the
    /// packet header in a registered header buffer (with as much of `prefix` as
    /// fits after it, copied: it is small), and the payload SGEs are extracted
    /// straight from `payload`, at most ``SMBDirectConfiguration/maxPayloadSGEs`` of
    /// them and at most the negotiated send size; what does not fit goes in the next
    /// message. The payload is not copied. The fragments are posted in chains of up to
    /// 16, one doorbell each (and before any wait for a credit), not one post per
    /// message: on a user-space provider a post is a system call. Each message spends a send credit and
    /// grants the peer the receives reposted since the last grant; a send that finds
    /// no credit waits for the peer to grant one.
    ///
    /// `payload` is advanced past the bytes sent. What extraction retained (region
    /// references in `keys`; pins in `ledger` for a user-backed iterator) is released
    /// as each send completes, before this call returns.
    ///
    /// Mirrors the kernel's `smbd_send` and `smbd_post_send_iter`.
    ///
    /// - Throws: ``SMBDirectError/emptyMessage`` for a message without a byte,
    ///   ``SMBDirectError/messageTooLarge(length:limit:)`` beyond the peer's
    ///   reassembly size, and ``SMBDirectError/extraction(_:)`` when the first
    ///   fragment cannot be extracted, without sending anything; after that, any
    ///   error ends the connection.
    public func send<Keys: KeyResolver>(
        _ prefix: UnsafeRawBufferPointer, payload: inout IOIterator, keys: Keys, ledger: PinLedger = .shared
    ) throws(SMBDirectError) {
        try checkUsable()
        guard state == .connected, let limits else { throw .notConnected }
        let total = prefix.count + payload.count
        guard total > 0 else { throw .emptyMessage }
        guard total <= limits.maxFragmentedSendSize else { throw .messageTooLarge(length: total, limit: limits.maxFragmentedSendSize) }
        let room = limits.maxPayloadPerMessage
        var sent = 0
        while sent < total {
            try waitForSendCredit()
            let slot = freeSendSlots.removeLast()
            let buffer = sendBuffer(slot)
            let plan = sendPlans[slot]
            let prefixPart = max(0, min(prefix.count - sent, room))
            if prefixPart > 0 {
                UnsafeMutableRawBufferPointer(rebasing: buffer[SMBDirectDataTransfer.payloadOffset...])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: prefix[sent..<sent + prefixPart]))
            }
            var payloadBytes = 0
            if prefixPart < room, payload.count > 0 {
                do {
                    // The payload's SGEs are extracted straight into the slot's request, after the header's.
                    payloadBytes = try plan.build(from: &payload, operation: .send, keys: keys, ledger: ledger,
                                                  maxSize: room - prefixPart)
                } catch {
                    freeSendSlots.append(slot)
                    guard sent > 0 else { throw .extraction(error) }
                    discardStagedSends()
                    throw fail(.extraction(error))
                }
                if payloadBytes == 0 { plan.release() }
            }
            let dataLength = prefixPart + payloadBytes
            guard dataLength > 0 else {
                freeSendSlots.append(slot)
                guard sent > 0 else { throw .payloadNotExtractable(remaining: payload.count) }
                discardStagedSends()
                throw fail(.payloadNotExtractable(remaining: payload.count))
            }
            if payloadBytes == 0 { plan.buildReservedOnly() }
            let grant = credits.takeGrant()
            let header = SMBDirectDataTransfer(
                creditsRequested: UInt16(credits.target), creditsGranted: UInt16(grant),
                remainingDataLength: UInt32(total - sent - dataLength), dataLength: UInt32(dataLength))
            header.encode(into: buffer)
            let sgeCount = plan.requests[0].sges.count
            try stageSend(slot: slot, headerLength: SMBDirectDataTransfer.payloadOffset + prefixPart)
            credits.spendSendCredit()
            count(sentMessageWith: sgeCount, payloadSGEs: sgeCount - 1, grant: grant, bytes: dataLength)
            sent += dataLength
        }
        try postStagedSends()
        statistics.upperLayerMessagesSent += 1
        try wait(for: "the sends to complete") { sendsInFlight == 0 }
    }

    /// Sends one upper-layer message held in `message` (copied into the header buffers).
    public func send(_ message: UnsafeRawBufferPointer) throws(SMBDirectError) {
        var nothing = IOIterator(source: UnsafeRawBufferPointer(start: nil, count: 0))
        try send(message, payload: &nothing, keys: sendRegistrations)
    }

    /// Sends one upper-layer message held in `message`.
    public func send(_ message: [UInt8]) throws(SMBDirectError) {
        let result: Result<Void, SMBDirectError> = message.withUnsafeBytes { bytes in
            Result { () throws(SMBDirectError) in try send(bytes) }
        }
        try result.get()
    }

    /// Sends a keepalive: a message without payload that asks the peer to answer
    /// promptly (`SMB_DIRECT_RESPONSE_REQUESTED`). If no message arrives within the
    /// keepalive interval, the connection fails with ``SMBDirectError/keepaliveTimeout``.
    public func sendKeepalive() throws(SMBDirectError) {
        try checkUsable()
        guard state == .connected else { throw .notConnected }
        try waitForSendCredit()
        try sendEmpty(flags: .responseRequested)
        keepaliveSentAt = ContinuousClock.now
        statistics.keepalivesSent += 1
    }

    /// Waits until a send slot is free and a credit may be spent, after posting the
    /// staged sends (the peer grants credits for what it received).
    func waitForSendCredit() throws(SMBDirectError) {
        if mayPostMessage() { return }
        try postStagedSends()
        statistics.creditStalls += 1
        try wait(for: "a send credit") { mayPostMessage() }
    }

    func mayPostMessage() -> Bool {
        !freeSendSlots.isEmpty && credits.maySend(granting: min(credits.pendingGrant, credits.maxGrant))
    }

    /// Sends a message without payload from a free slot, granting what is pending.
    func sendEmpty(flags: SMBDirectDataTransfer.Flags) throws(SMBDirectError) {
        let slot = freeSendSlots.removeLast()
        let buffer = sendBuffer(slot)
        let grant = credits.takeGrant()
        let header = SMBDirectDataTransfer(creditsRequested: UInt16(credits.target), creditsGranted: UInt16(grant), flags: flags)
        let length = header.encode(into: buffer)
        sendPlans[slot].buildReservedOnly()
        try postSend(slot: slot, headerLength: length)
        credits.spendSendCredit()
        count(sentMessageWith: 1, payloadSGEs: 0, grant: grant, bytes: 0)
        statistics.emptyMessagesSent += 1
    }

    /// Sends, without blocking, the messages that are due: an answer the peer asked
    /// for, and a credit grant once enough receives were reposted (or the peer has
    /// no credit left). What cannot be sent for lack of a credit waits for the next round.
    func sendDueMessages() throws(SMBDirectError) {
        guard state == .connected else { return }
        while mayPostMessage() {
            let pending = credits.pendingGrant
            let grantBatch = max(1, min(credits.peerTarget, receiveSlotCount) / 2)
            let grantDue = grantCheckPending && pending > 0 && (credits.peerCredits == 0 || pending >= grantBatch)
            guard answerOwed || grantDue else {
                if pending == 0 { grantCheckPending = false }
                return
            }
            if answerOwed { statistics.keepalivesAnswered += 1 }
            answerOwed = false
            try sendEmpty(flags: [])
        }
    }

    /// Sends a keepalive after an idle interval, and fails the connection when one
    /// went unanswered for an interval.
    func checkKeepalive() throws(SMBDirectError) {
        guard state == .connected else { return }
        let now = ContinuousClock.now
        if let sent = keepaliveSentAt {
            if now - sent > configuration.keepaliveInterval { throw fail(.keepaliveTimeout) }
        } else if now - lastArrival > configuration.keepaliveInterval, mayPostMessage() {
            try sendEmpty(flags: .responseRequested)
            keepaliveSentAt = now
            statistics.keepalivesSent += 1
        }
    }

    private func count(sentMessageWith sges: Int, payloadSGEs: Int, grant: Int, bytes: Int) {
        statistics.messagesSent += 1
        statistics.sgesSent += sges
        statistics.payloadSGEsSent += payloadSGEs
        statistics.maxSGEsPerMessage = max(statistics.maxSGEsPerMessage, sges)
        statistics.creditsGranted += grant
        statistics.payloadBytesSent += bytes
    }
}
