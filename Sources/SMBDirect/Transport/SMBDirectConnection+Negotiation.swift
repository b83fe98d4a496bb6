import RDMASGE

extension SMBDirectConnection {
    /// Posts every receive and, as the initiator, sends the Negotiate Request
    /// (MS-SMBD 3.1.5.2). The queue pair must be connected to the peer's.
    public func start() throws(SMBDirectError) {
        precondition(state == .idle, "start() is called once, on a new connection")
        state = .negotiating
        for slot in 0..<receiveSlotCount { try postReceive(slot) }
        credits.posted(receiveSlotCount)
        if role == .initiator {
            try sendControl { configuration.negotiateRequest.encode(into: $0) }
        }
    }

    /// Waits until negotiation has finished.
    public func waitUntilConnected() throws(SMBDirectError) {
        try wait(for: "the negotiation") { state == .connected }
    }

    /// Handles the negotiation message that arrived: the request (responder) or the
    /// response (initiator).
    func negotiate(with message: UnsafeRawBufferPointer) throws(SMBDirectError) {
        switch role {
        case .responder:
            let request: SMBDirectNegotiateRequest
            do {
                request = try SMBDirectNegotiateRequest(decoding: message)
            } catch {
                if case .unsupportedVersion = error { try refuseVersion() }
                throw fail(.malformed(error))
            }
            let agreed = SMBDirectLimits(configuration: configuration, request: request)
            let grant = min(credits.postedReceives, Int(request.creditsRequested), credits.maxGrant)
            credits.negotiated(sendCredits: 0, peerCredits: grant, peerTarget: Int(request.creditsRequested))
            let response = SMBDirectNegotiateResponse(
                creditsRequested: UInt16(credits.target), creditsGranted: UInt16(grant),
                maxReadWriteSize: UInt32(agreed.maxReadWriteSize), preferredSendSize: UInt32(agreed.maxSendSize),
                maxReceiveSize: UInt32(agreed.maxReceiveSize), maxFragmentedSize: UInt32(agreed.maxFragmentedReceiveSize))
            try sendControl { response.encode(into: $0) }
            statistics.creditsGranted += grant
            connect(agreed)
        case .initiator:
            do {
                let response = try SMBDirectNegotiateResponse(decoding: message)
                let agreed = try SMBDirectLimits(configuration: configuration, response: response)
                credits.negotiated(sendCredits: Int(response.creditsGranted), peerCredits: 0,
                                   peerTarget: Int(response.creditsRequested))
                statistics.creditsReceived += Int(response.creditsGranted)
                connect(agreed)
            } catch {
                throw fail(.malformed(error))
            }
        }
    }

    private func connect(_ agreed: SMBDirectLimits) {
        limits = agreed
        reassembler = FragmentReassembler(maxMessageSize: agreed.maxFragmentedReceiveSize)
        state = .connected
    }

    /// Answers a request without a common version with `STATUS_NOT_SUPPORTED` and
    /// waits (briefly) for the answer to leave before the connection ends.
    private func refuseVersion() throws(SMBDirectError) {
        let refusal = SMBDirectNegotiateResponse(
            negotiatedVersion: 0, creditsRequested: 0, creditsGranted: 0,
            status: SMBDirectNegotiateResponse.statusNotSupported, maxReadWriteSize: 0, preferredSendSize: 0,
            maxReceiveSize: 0, maxFragmentedSize: 0)
        try sendControl { refusal.encode(into: $0) }
        let deadline = ContinuousClock.now.advanced(by: .seconds(1))
        while sendsInFlight > 0 {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let completion = try? completionQueue.wait(timeout: left) else { break }
            account(completion)
        }
    }

    /// Sends a negotiation message, which needs no credit, from a free send slot.
    private func sendControl(_ encode: (UnsafeMutableRawBufferPointer) -> Int) throws(SMBDirectError) {
        guard let slot = freeSendSlots.popLast() else { preconditionFailure("negotiation found no free send slot") }
        let length = encode(sendBuffer(slot))
        sendPlans[slot].buildReservedOnly()
        try postSend(slot: slot, headerLength: length)
    }

    /// Posts send slot `slot`'s planned message, its header the first `headerLength`
    /// bytes of the slot's header buffer, after the sends staged before it.
    func postSend(slot: Int, headerLength: Int) throws(SMBDirectError) {
        try stageSend(slot: slot, headerLength: headerLength)
        try postStagedSends()
    }

    /// Stages send slot `slot`'s planned message (see `postSend(slot:headerLength:)`):
    /// it goes with the next chain, posted when ``maxStagedSends`` are staged or by
    /// `postStagedSends()`.
    func stageSend(slot: Int, headerLength: Int) throws(SMBDirectError) {
        let plan = sendPlans[slot]
        let header = sendBuffer(slot)
        plan.setReservedSGE(SGE(address: UInt64(UInt(bitPattern: header.baseAddress)), length: UInt32(headerLength),
                                lkey: arenaRegion.lkey), slot: 0, request: 0)
        stagedSends[stagedSlots.count] = plan.workRequest(at: 0, id: Self.workID(.send, slot), signaled: true)
        stagedSlots.append(slot)
        if stagedSlots.count == stagedSends.count { try postStagedSends() }
    }

    /// Posts the staged sends as one chain, in the order they were staged. When the
    /// device refuses one, those before it are in flight; it and the rest are released
    /// and the connection fails.
    func postStagedSends() throws(SMBDirectError) {
        let count = stagedSlots.count
        guard count > 0 else { return }
        var posted = count
        var failure: VerbsError?
        do {
            try queuePair.postSend(chain: UnsafeBufferPointer(rebasing: stagedSends[..<count]))
        } catch {
            posted = min(count, max(0, error.failedRequest ?? 0))
            failure = error
        }
        for (index, slot) in stagedSlots.enumerated() {
            if index < posted {
                sendInFlight[slot] = true
            } else {
                releaseSendSlot(slot)
            }
        }
        sendsInFlight += posted
        stagedSlots.removeAll(keepingCapacity: true)
        if let failure { throw fail(.verbs(failure)) }
    }

    /// Releases the staged sends without posting them: the message they belong to is
    /// abandoned, and the connection with it.
    func discardStagedSends() {
        for slot in stagedSlots { releaseSendSlot(slot) }
        stagedSlots.removeAll(keepingCapacity: true)
    }
}
