import RDMASGE

/// One side's verbs objects for a session: a queue pair whose sends and receives
/// report to two completion queues with channels (waits sleep rather than spin; a
/// work-request plan's completion queue carries sends only), and a small registered
/// buffer of message slots for the protocol's SENDs and receives.
final class CopyEndpoint<Domain: ProtectionDomain> {
    let sendQueue: Domain.CompletionQueueType
    let receiveQueue: Domain.CompletionQueueType
    let queuePair: Domain.QueuePairType
    private let slots: CopyBuffer
    private let region: Domain.Region

    /// The message slots: receives use slots 0 and 1, sends slot 2.
    static var slotCount: Int { 3 }
    /// The identifier of the protocol's SENDs (the plans' requests count up from 0).
    static var messageID: UInt64 { .max }

    /// Makes the queues, a queue pair in the reset state with room for
    /// `sendDepth` sends of up to `maxSGEs` SGEs, and the message slots.
    init(domain: Domain, sendDepth: Int, maxSGEs: Int) throws(RDMACopyError) {
        let slots = try CopyBuffer(count: Self.slotCount * CopyMessage.size)
        self.slots = slots
        do throws(VerbsError) {
            sendQueue = try domain.createCompletionQueue(capacity: sendDepth + 1, channel: domain.createCompletionChannel())
            receiveQueue = try domain.createCompletionQueue(capacity: Self.slotCount, channel: domain.createCompletionChannel())
            queuePair = try domain.createQueuePair(
                sendCompletions: sendQueue, receiveCompletions: receiveQueue,
                capabilities: QueuePairCapabilities(maxSendWorkRequests: sendDepth, maxReceiveWorkRequests: Self.slotCount,
                                                    maxSendSGEs: maxSGEs, maxReceiveSGEs: 1))
            region = try domain.registerMemory(address: UInt(slots.address), length: slots.bytes.count, access: .localWrite)
        } catch {
            throw .verbs(error)
        }
    }

    /// Destroys the queue pair, the queues and the slots' region.
    func close() {
        try? queuePair.close()
        try? sendQueue.close()
        try? receiveQueue.close()
        try? region.deregister()
    }

    /// Posts a receive into `slot`, with the slot as its identifier.
    func postReceive(slot: Int) throws(RDMACopyError) {
        var sge = self.sge(slot)
        do throws(VerbsError) {
            try withUnsafePointer(to: &sge) { (sge) throws(VerbsError) in
                try queuePair.postReceive(ReceiveWorkRequest(id: UInt64(slot), sges: UnsafeBufferPointer(start: sge, count: 1)))
            }
        } catch {
            throw .verbs(error)
        }
    }

    /// SENDs `message` and waits until it completed, at most `timeout`.
    func send(_ message: CopyMessage, timeout: Duration) throws(RDMACopyError) {
        let slot = 2
        UnsafeMutableRawBufferPointer(rebasing: slots.bytes[slot * CopyMessage.size..<(slot + 1) * CopyMessage.size])
            .copyBytes(from: message.bytes)
        var sge = self.sge(slot)
        do throws(VerbsError) {
            try withUnsafePointer(to: &sge) { (sge) throws(VerbsError) in
                try queuePair.postSend(SendWorkRequest(id: Self.messageID, opcode: .send,
                                                       sges: UnsafeBufferPointer(start: sge, count: 1), flags: .signaled))
            }
        } catch {
            throw .verbs(error)
        }
        let completion = try wait(on: sendQueue, timeout: timeout, step: "sending the \(message.kind) message")
        guard completion.status == .success else { throw .transferFailed(completion.status, step: "sending the \(message.kind) message") }
    }

    /// Waits at most `timeout` for the next receive; its completion and the bytes of its slot.
    /// - Throws: ``RDMACopyError/transferFailed(_:step:)`` for a receive that failed
    ///   (flushed: the peer went away), ``RDMACopyError/timedOut(step:)``.
    func receive(timeout: Duration, step: String) throws(RDMACopyError) -> (WorkCompletion, [UInt8]) {
        let completion = try wait(on: receiveQueue, timeout: timeout, step: step)
        guard completion.status == .success else { throw .transferFailed(completion.status, step: step) }
        let slot = Int(completion.id)
        return (completion, Array(slots.bytes[slot * CopyMessage.size..<(slot + 1) * CopyMessage.size]))
    }

    private func wait(on queue: Domain.CompletionQueueType, timeout: Duration, step: String) throws(RDMACopyError) -> WorkCompletion {
        let completion: WorkCompletion?
        do throws(VerbsError) {
            completion = try queue.wait(timeout: timeout)
        } catch {
            throw .verbs(error)
        }
        guard let completion else { throw .timedOut(step: step) }
        return completion
    }

    private func sge(_ slot: Int) -> SGE {
        SGE(address: slots.address + UInt64(slot * CopyMessage.size), length: UInt32(CopyMessage.size), lkey: region.lkey)
    }
}
