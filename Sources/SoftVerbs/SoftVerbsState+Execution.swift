#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// Polling and execution: requests run at post time, in order per queue pair, by
/// real memory copies, and complete with the statuses a device reports.
extension SoftVerbsState {
    // MARK: Polling

    mutating func poll(_ queue: UInt32, into completions: UnsafeMutableBufferPointer<WorkCompletion>) -> Int {
        var moved = 0
        while moved < completions.count, queues[queue]!.head < queues[queue]!.entries.count {
            let entry = queues[queue]!.entries[queues[queue]!.head]
            queues[queue]!.head += 1
            completions[moved] = entry.completion
            moved += 1
            if moved < completions.count, faults.completionRepeats() {
                completions[moved] = entry.completion
                moved += 1
            }
            if pairs[entry.pair] != nil {
                pairs[entry.pair]!.sendSlots = max(0, pairs[entry.pair]!.sendSlots - entry.sendSlots)
                pairs[entry.pair]!.receiveSlots = max(0, pairs[entry.pair]!.receiveSlots - entry.receiveSlots)
            }
        }
        if queues[queue]!.head == queues[queue]!.entries.count {
            queues[queue]!.entries.removeAll(keepingCapacity: true)
            queues[queue]!.head = 0
        }
        if moved > 1, faults.pollReverses() {
            var batch = UnsafeMutableBufferPointer(rebasing: completions[..<moved])
            batch.reverse()
        }
        return moved
    }

    // MARK: Execution

    /// Runs a queue pair's send requests in order until one must wait for a receive.
    mutating func progress(_ number: UInt32) {
        while let pair = pairs[number], pair.state == .readyToSend, let send = pair.sends.first {
            guard let status = execute(send, on: number) else { return }
            pairs[number]!.sends.removeFirst()
            var final = status
            if status == .success, let injected = faults.completionStatus() { final = injected }
            completeSend(send, on: number, status: final)
            if final != .success { moveToError(number) }
        }
    }

    /// Executes one send request; `nil` when it must wait for a receive at the peer.
    mutating func execute(_ send: PendingSend, on number: UInt32) -> WorkCompletionStatus? {
        let pair = pairs[number]!
        // A link that is down never answers: the requester's retries run out.
        guard portActive else { return .retryExceededError }
        let total = send.inlineData?.count ?? send.sges.reduce(0) { $0 + Int($1.length) }
        if send.inlineData == nil {
            let needed: AccessFlags = send.opcode == .rdmaRead ? .localWrite : []
            guard localSegments(send.sges, domain: pair.domain, access: needed) != nil else { return .localProtectionError }
        }
        guard total <= attributes.maxMessageSize else { return .localLengthError }
        // A peer that is not ready, or that expects another PSN, drops every packet.
        guard let remote = pair.remote, let peer = pairs[remote],
              peer.state == .readyToReceive || peer.state == .readyToSend, peer.receivePSN == pair.sendPSN
        else { return .retryExceededError }

        var target: (address: UInt, length: Int)?
        // The peer's region the request reaches through its rkey (by lkey).
        var targetKey: UInt32 = 0
        if send.opcode.isRemoteAccess {
            let needed: AccessFlags = send.opcode == .rdmaRead ? .remoteRead : .remoteWrite
            // One byte outside the region is refused as a device refuses it (IBV_WC_REM_ACCESS_ERR).
            guard let lkey = regionsByRKey[send.rkey], let region = regions[lkey], region.domain == peer.domain,
                  region.access.contains(needed), region.contains(send.remoteAddress, total)
            else { return .remoteAccessError }
            target = (UInt(send.remoteAddress), total)
            targetKey = lkey
        }
        var receive: PostedReceive?
        if send.opcode.consumesReceive {
            guard let posted = peer.receives.first else { return nil }
            pairs[remote]!.receives.removeFirst()
            receive = posted
        }
        switch send.opcode {
        case .send, .sendWithImmediate:
            let receive = receive!
            guard let destinations = localSegments(receive.sges, domain: peer.domain, access: .localWrite) else {
                failReceive(receive, on: remote, status: .localProtectionError)
                return .remoteOperationError
            }
            guard destinations.reduce(0, { $0 + $1.length }) >= total else {
                failReceive(receive, on: remote, status: .localLengthError)
                return .remoteInvalidRequestError
            }
            if tracksPhysicalPages {
                gatherTracked(send, into: tracked(receive.sges))
            } else {
                gather(send, into: destinations)
            }
        case .rdmaWrite, .rdmaWriteWithImmediate:
            if tracksPhysicalPages {
                gatherTracked(send, into: [(target!.address, total, targetKey)])
            } else {
                gather(send, into: [target!])
            }
        case .rdmaRead:
            if tracksPhysicalPages {
                copyTracked(from: [(target!.address, total, targetKey)], to: tracked(send.sges))
            } else {
                let sources = [(address: target!.address, length: total)]
                copy(from: sources, to: localSegments(send.sges, domain: pair.domain, access: .localWrite)!)
            }
        }
        if let receive {
            let immediate = send.opcode == .send ? nil : send.immediateData as UInt32?
            let opcode: WorkCompletionOpcode = send.opcode == .rdmaWriteWithImmediate ? .receiveRDMAWithImmediate : .receive
            completeReceive(receive.id, on: remote, status: .success, opcode: opcode, byteCount: total, immediateData: immediate,
                            solicited: send.solicited)
        }
        return .success
    }

    /// The memory of `sges` when every one is inside a region of `domain` that allows `access`.
    func localSegments(_ sges: [SGE], domain: UInt32, access: AccessFlags) -> [(address: UInt, length: Int)]? {
        var segments: [(address: UInt, length: Int)] = []
        segments.reserveCapacity(sges.count)
        for sge in sges {
            guard let region = regions[sge.lkey], region.domain == domain, region.access.isSuperset(of: access),
                  region.contains(sge.address, Int(sge.length))
            else { return nil }
            segments.append((UInt(sge.address), Int(sge.length)))
        }
        return segments
    }

    /// Copies a send request's data (inline or gathered from its SGEs) into `destinations`.
    func gather(_ send: PendingSend, into destinations: [(address: UInt, length: Int)]) {
        if let data = send.inlineData {
            data.withUnsafeBytes { bytes in
                copy(from: [(UInt(bitPattern: bytes.baseAddress), bytes.count)], to: destinations)
            }
        } else {
            copy(from: send.sges.map { (UInt($0.address), Int($0.length)) }, to: destinations)
        }
    }

    /// Copies the bytes of `sources`, in order, into `destinations`, in order, until
    /// either runs out.
    func copy(from sources: [(address: UInt, length: Int)], to destinations: [(address: UInt, length: Int)]) {
        var source = 0, sourceOffset = 0
        var destination = 0, destinationOffset = 0
        while source < sources.count, destination < destinations.count {
            let (from, fromLength) = sources[source]
            let (to, toLength) = destinations[destination]
            let n = min(fromLength - sourceOffset, toLength - destinationOffset)
            if n > 0 {
                memmove(UnsafeMutableRawPointer(bitPattern: to + UInt(destinationOffset))!,
                        UnsafeRawPointer(bitPattern: from + UInt(sourceOffset))!, n)
            }
            sourceOffset += n
            destinationOffset += n
            if sourceOffset == fromLength { source += 1; sourceOffset = 0 }
            if destinationOffset == toLength { destination += 1; destinationOffset = 0 }
        }
    }

    /// A receive the responder could not complete: it completes with `status` and the
    /// responder's queue pair moves to the error state.
    mutating func failReceive(_ receive: PostedReceive, on number: UInt32, status: WorkCompletionStatus) {
        completeReceive(receive.id, on: number, status: status, opcode: .receive, byteCount: 0, immediateData: nil)
        moveToError(number)
    }

    mutating func completeSend(_ send: PendingSend, on number: UInt32, status: WorkCompletionStatus) {
        guard status != .success || send.signaled else {
            pairs[number]!.unsignalledRun += 1
            return
        }
        let slots = 1 + pairs[number]!.unsignalledRun
        pairs[number]!.unsignalledRun = 0
        let completion = WorkCompletion(id: send.id, status: status, opcode: send.opcode.completionOpcode,
                                        byteCount: 0, queuePairNumber: number)
        queues[pairs[number]!.sendQueue]!.entries.append(
            Entry(completion: completion, pair: number, sendSlots: slots, receiveSlots: 0))
        raiseEvent(pairs[number]!.sendQueue, wakesSolicited: status != .success)
    }

    /// Queues a receive completion; `solicited` when the sender asked for a solicited event.
    mutating func completeReceive(_ id: UInt64, on number: UInt32, status: WorkCompletionStatus,
                                  opcode: WorkCompletionOpcode, byteCount: Int, immediateData: UInt32?, solicited: Bool = false) {
        let completion = WorkCompletion(id: id, status: status, opcode: opcode, byteCount: byteCount,
                                        immediateData: immediateData, queuePairNumber: number)
        queues[pairs[number]!.receiveQueue]!.entries.append(
            Entry(completion: completion, pair: number, sendSlots: 0, receiveSlots: 1))
        raiseEvent(pairs[number]!.receiveQueue, wakesSolicited: solicited || status != .success)
    }
}
