#if RDMA
import Glibc
import IBVerbs
import IterExtract
import RDMASGE

/// One end of a pair connection: a queue pair with a completion queue (and channel)
/// for its sends and one for its receives, the connection that made it, and a page
/// holding one control message slot to send from and one to receive into.
///
/// Receive completions other than the control slot's (data receives the caller
/// posted) are kept in ``dataCompletions`` while a control message is awaited.
/// Waits sleep on the queues' channels: eight links share one vCPU in the guest.
final class PairLink {
    typealias Domain = IBVerbsProtectionDomain

    let queuePair: Domain.QueuePairType
    let sendQueue: Domain.CompletionQueueType
    let receiveQueue: Domain.CompletionQueueType
    private(set) var connection: RDMAConnection!
    /// Data receive completions taken so far, in order.
    var dataCompletions: [WorkCompletion] = []
    private let channels: [Domain.CompletionChannelType]
    private let slots: UnsafeMutableRawBufferPointer
    private let slotRegion: Domain.Region
    private static let controlID = UInt64.max
    private static let timeout = Duration.seconds(60)

    /// Makes the queue pair (with room for `capabilities`) and its queues in `domain`,
    /// then `connect`s it (an accept or a connect).
    init(domain: Domain, capabilities: QueuePairCapabilities,
         connect: (Domain.QueuePairType) throws -> RDMAConnection) throws {
        let channels = [try domain.createCompletionChannel(), try domain.createCompletionChannel()]
        let depth = capabilities.maxSendWorkRequests + capabilities.maxReceiveWorkRequests
        sendQueue = try domain.createCompletionQueue(capacity: depth, channel: channels[0])
        receiveQueue = try domain.createCompletionQueue(capacity: depth, channel: channels[1])
        queuePair = try domain.createQueuePair(sendCompletions: sendQueue, receiveCompletions: receiveQueue, capabilities: capabilities)
        self.channels = channels
        slots = .allocate(byteCount: pageSize, alignment: pageSize)
        slots.initializeMemory(as: UInt8.self, repeating: 0)
        slotRegion = try domain.registerMemory(slots, access: .localWrite)
        do {
            connection = try connect(queuePair)
        } catch {
            try? close()
            throw error
        }
    }

    /// Posts a receive into the control slot; the next SEND of the peer after the
    /// receives posted before it lands there.
    func postControlReceive() throws {
        let sge = SGE(address: UInt64(slotRegion.address) + UInt64(PairProtocol.slotSize), length: UInt32(PairProtocol.slotSize),
                      lkey: slotRegion.lkey)
        try withUnsafePointer(to: sge) { sge in
            try queuePair.postReceive(ReceiveWorkRequest(id: Self.controlID, sges: UnsafeBufferPointer(start: sge, count: 1)))
        }
    }

    /// Sends `message` from the send slot and waits for its completion.
    func send(_ message: PairMessage) throws {
        let bytes = message.bytes
        slots.copyBytes(from: bytes)
        let sge = SGE(address: UInt64(slotRegion.address), length: UInt32(bytes.count), lkey: slotRegion.lkey)
        try withUnsafePointer(to: sge) { sge in
            try queuePair.postSend(SendWorkRequest(id: Self.controlID, opcode: .send, sges: UnsafeBufferPointer(start: sge, count: 1),
                                                   flags: .signaled))
        }
        guard let completion = try sendQueue.wait(timeout: Self.timeout) else { throw Failure("sending \(message) did not complete") }
        guard completion.status == .success, completion.id == Self.controlID else {
            throw Failure("sending \(message) completed with \(completion)")
        }
    }

    /// The next control message; data receive completions before it go to
    /// ``dataCompletions``.
    /// - Throws: When a receive fails, the connection ends, or nothing comes for 60 s.
    func receive() throws -> PairMessage {
        let deadline = ContinuousClock.now.advanced(by: Self.timeout)
        while true {
            guard let completion = try receiveQueue.wait(timeout: .seconds(1)) else {
                if let event = try connection.takeEvent(), event.endsConnection {
                    throw Failure("the connection ended (\(event)) while waiting for a message")
                }
                guard ContinuousClock.now < deadline else { throw Failure("no message within \(Self.timeout)") }
                continue
            }
            guard completion.status == .success else { throw Failure("a receive completed with \(completion)") }
            guard completion.id == Self.controlID else {
                dataCompletions.append(completion)
                continue
            }
            let start = slots.baseAddress! + PairProtocol.slotSize
            return try PairMessage(bytes: Array(UnsafeRawBufferPointer(start: start, count: completion.byteCount)))
        }
    }

    /// Sends `message` and returns the peer's answer.
    func ask(_ message: PairMessage) throws -> PairMessage {
        try postControlReceive()
        try send(message)
        return try receive()
    }

    /// Posts `plan` with every request signalled (after announcing it with `message`,
    /// when given, and hearing ``PairMessage/ready``), waits for its completions and
    /// releases it; returns how many requests it had.
    /// - Throws: When the announcement fails, a post is refused (what went out is
    ///   flushed and completed first), or a request fails.
    func run(_ plan: WorkRequestPlan, announcing message: PairMessage? = nil) throws -> Int {
        if let message {
            let answer: PairMessage
            do { answer = try ask(message) } catch { plan.release(); throw error }
            guard answer == .ready else {
                plan.release()
                throw Failure("the server answered \(message) with \(answer)")
            }
        }
        do {
            try plan.post(on: queuePair, firstID: 1, signaling: .every)
        } catch {
            try? queuePair.modify(to: .error, remote: nil)
            if plan.postedCount > 0 { _ = try? plan.complete(waitingOn: sendQueue, timeout: .seconds(30)) } else { plan.release() }
            throw error
        }
        let count = plan.requests.count
        let status = try plan.complete(waitingOn: sendQueue, timeout: Self.timeout)
        guard status == .success else { throw Failure("a request of the plan completed with \(status)") }
        return count
    }

    /// Waits until the connection has ended, at most 10 s; the event that ended it.
    func awaitEnd() throws -> ConnectionEvent? {
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while let event = try connection.nextEvent(timeout: deadline - ContinuousClock.now) {
            if event.endsConnection { return event }
        }
        return nil
    }

    /// Disconnects (if still connected), then destroys the queue pair, the queues
    /// and the control slots' region.
    func close() throws {
        try connection?.disconnect()
        try queuePair.close()
        try sendQueue.close()
        try receiveQueue.close()
        for channel in channels { try channel.close() }
        try slotRegion.deregister()
        slots.deallocate()
    }
}
#endif
