import IterExtract
import RDMASGE

/// Completions and receiving: the device's word checked before use, messages decoded,
/// reassembled and held for the application within the backlog, receives reposted
/// (and granted back) as the application reads.
extension SMBDirectConnection {
    // MARK: Completions

    /// What a completion's work request identifier names, if it names work of this
    /// connection that is in flight.
    func inFlightWork(_ completion: WorkCompletion) -> (kind: WorkKind, index: Int)? {
        let index = Int(completion.id & 0xFFFF_FFFF)
        switch WorkKind(rawValue: completion.id >> 32) {
        case .send: return index < sendSlotCount && sendInFlight[index] ? (.send, index) : nil
        case .receive: return index < receiveSlotCount && receivePosted[index] ? (.receive, index) : nil
        case .rdma: return index < rdmaSlotInFlight.count && rdmaSlotInFlight[index] ? (.rdma, index) : nil
        case nil: return nil
        }
    }

    /// Handles one completion. The device's word is checked before it is used: a
    /// completion for work that is not in flight (a duplicate), a receive consumed by
    /// anything but a SEND (an RDMA WRITE with immediate data, whose byte count is the
    /// write's length), or one longer than the receive buffer ends the connection
    /// with ``SMBDirectError/unexpectedCompletion(_:byteCount:)``.
    func handle(_ completion: WorkCompletion) throws(SMBDirectError) {
        guard let (kind, index) = inFlightWork(completion) else {
            throw fail(.unexpectedCompletion(completion.opcode, byteCount: completion.byteCount))
        }
        account(kind, index)
        switch kind {
        case .send:
            guard completion.status == .success else { throw fail(.completion(completion.status, operation: .send)) }
        case .receive:
            guard completion.status == .success else { throw fail(.completion(completion.status, operation: .receive)) }
            guard completion.opcode == .receive, completion.byteCount <= configuration.maxReceiveSize else {
                throw fail(.unexpectedCompletion(completion.opcode, byteCount: completion.byteCount))
            }
            try receive(slot: index, byteCount: completion.byteCount)
        case .rdma:
            guard completion.status == .success else { throw fail(.completion(completion.status, operation: completion.opcode)) }
        }
    }

    /// Counts a completion as finished work without processing it (shutdown):
    /// releases a send slot, forgets a receive. A completion for work that is not in
    /// flight is ignored.
    func account(_ completion: WorkCompletion) {
        if let (kind, index) = inFlightWork(completion) { account(kind, index) }
    }

    /// Counts work of `kind` in slot `index` as finished.
    private func account(_ kind: WorkKind, _ index: Int) {
        switch kind {
        case .send:
            sendsInFlight -= 1
            releaseSendSlot(index)
        case .receive:
            receivesInFlight -= 1
            receivePosted[index] = false
        case .rdma:
            rdmaInFlight -= 1
            rdmaSlotInFlight[index] = false
        }
    }

    /// Gives back what send slot `slot`'s payload SGEs retained, and frees the slot.
    func releaseSendSlot(_ slot: Int) {
        if sendPlans[slot].isRetaining { sendPlans[slot].release() }
        sendInFlight[slot] = false
        freeSendSlots.append(slot)
    }

    /// Handles the message that arrived in receive slot `slot`, then reposts the slot,
    /// or parks it while the backlog of unread messages is full.
    func receive(slot: Int, byteCount: Int) throws(SMBDirectError) {
        let message = UnsafeRawBufferPointer(rebasing: receiveBuffer(slot)[..<byteCount])
        receivedMessageTap?(message)
        lastArrival = ContinuousClock.now
        keepaliveSentAt = nil
        guard state == .connected, let limits else {
            try negotiate(with: message)
            try postReceive(slot)
            return
        }
        let header: SMBDirectDataTransfer
        do {
            header = try SMBDirectDataTransfer(decoding: message, maxReceiveSize: limits.maxReceiveSize,
                                               maxFragmentedSize: limits.maxFragmentedReceiveSize)
        } catch {
            throw fail(.malformed(error))
        }
        guard credits.consumeReceive() else { throw fail(.protocolViolation("the peer sent a message without a credit")) }
        statistics.excessCreditsIgnored += credits.received(granted: Int(header.creditsGranted),
                                                            requested: Int(header.creditsRequested))
        statistics.messagesReceived += 1
        statistics.creditsReceived += Int(header.creditsGranted)
        if header.flags.contains(.responseRequested) { answerOwed = true }
        if header.dataLength > 0 {
            let whole: [UInt8]?
            do {
                whole = try reassembler.append(UnsafeRawBufferPointer(rebasing: message[header.payloadRange]),
                                               remaining: header.remainingDataLength)
            } catch {
                throw fail(.malformed(error))
            }
            if let whole {
                inbox.append(whole)
                inboxBytes += whole.count
                statistics.upperLayerMessagesReceived += 1
            }
            if inboxBytes >= configuration.maxReceiveBacklog {
                parkedReceives.append(slot)
                statistics.receivesParked += 1
                return
            }
        }
        try repost(slot)
    }

    /// Reposts receive slot `slot`, to be granted to the peer.
    func repost(_ slot: Int) throws(SMBDirectError) {
        try postReceive(slot)
        credits.posted(1)
        grantCheckPending = true
    }

    /// Reposts the parked receives while the backlog has room.
    func repostParkedReceives() throws(SMBDirectError) {
        while let slot = parkedReceives.last, inboxBytes < configuration.maxReceiveBacklog, state == .connected {
            parkedReceives.removeLast()
            try repost(slot)
        }
    }

    // MARK: Receiving

    /// The next whole upper-layer message, if one has arrived (after a ``progress()``).
    public func nextMessage() throws(SMBDirectError) -> [UInt8]? {
        try progress()
        let message = popMessage()
        try repostParkedReceives()
        return message
    }

    /// Waits for the next whole upper-layer message.
    public func receiveMessage() throws(SMBDirectError) -> [UInt8] {
        try wait(for: "a message from the peer") { inboxHead < inbox.count }
        let message = popMessage()!
        try repostParkedReceives()
        return message
    }

    func popMessage() -> [UInt8]? {
        guard inboxHead < inbox.count else { return nil }
        let message = inbox[inboxHead]
        inbox[inboxHead] = []
        inboxBytes -= message.count
        inboxHead += 1
        if inboxHead == inbox.count {
            inbox.removeAll(keepingCapacity: true)
            inboxHead = 0
        }
        return message
    }
}
