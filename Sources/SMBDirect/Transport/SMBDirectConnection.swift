#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract
import RDMASGE

/// One side of an SMB Direct connection (MS-SMBD) over a reliable-connected queue
/// pair: negotiation, credits, fragmentation and reassembly, keepalives, the RDMA
/// channel, and shutdown.
///
/// The connection is generic over the verbs protocols, so it runs on `SoftVerbs`
/// and on libibverbs alike: it creates its completion queue and queue pair in the
/// caller's protection domain, and the caller connects the queue pair to the peer's
/// (`QueuePair.connect(_:_:)` on one device; a connection manager on a network)
/// before ``start()``.
///
/// Memory: one registered arena holds a header buffer per send slot and a buffer per
/// receive. Payload is never copied on the send side: each message is SGE 0 (its
/// header) plus SGEs extracted straight from the caller's iterator, as the kernel's
/// SMB client builds them. Received messages are copied once out of the receive
/// buffers; a buffer is reposted, and its credit granted back, at once while the
/// messages held for the application stay under
/// ``SMBDirectConfiguration/maxReceiveBacklog`` bytes, and only as the application
/// reads them beyond that. A peer can make the connection hold at most
/// ``receiveMemoryBound`` bytes of received data, whatever it sends: a message
/// without a credit, or of an unexpected kind, ends the connection.
///
/// Driving: nothing happens in the background. ``progress()`` processes completions
/// without blocking; blocking operations call it in a loop and, while nothing
/// arrives, call ``idleHandler``, through which one thread can drive both ends of an
/// in-process connection.
public final class SMBDirectConnection<Domain: ProtectionDomain> {
    /// Which side of the negotiation this is.
    public enum Role: Sendable {
        /// Sends the Negotiate Request (the SMB client).
        case initiator
        /// Answers it (the SMB server).
        case responder
    }

    /// Where the connection is in its life.
    public enum State: Equatable, Sendable {
        /// Created; ``start()`` has not been called.
        case idle
        /// Negotiating.
        case negotiating
        /// Negotiated: data may flow.
        case connected
        /// Closed in order.
        case closed
        /// Ended by an error; everything was flushed and released.
        case failed(SMBDirectError)
    }

    /// What a work request identifier names.
    enum WorkKind: UInt64 {
        case send = 1
        case receive = 2
        case rdma = 3
    }

    /// This side's role.
    public let role: Role
    /// What this side offered.
    public let configuration: SMBDirectConfiguration
    /// The protection domain everything is registered in.
    public let domain: Domain
    /// The queue pair; connect it to the peer's before ``start()``.
    public let queuePair: Domain.QueuePairType
    let completionQueue: Domain.CompletionQueueType
    /// The state.
    public internal(set) var state: State = .idle
    /// The negotiated sizes, once connected.
    public internal(set) var limits: SMBDirectLimits?
    /// The credit accounting.
    public internal(set) var credits: SMBDirectCredits
    /// The counters.
    public internal(set) var statistics = SMBDirectStatistics()
    /// Called by blocking operations while nothing arrives: drive the peer from here
    /// when it runs in the same thread (it must not block on this connection).
    public var idleHandler: (() -> Void)?
    /// Called with every message that arrives, negotiation included, before it is
    /// decoded: for traces and captures. The bytes are valid during the call only.
    public var receivedMessageTap: ((UnsafeRawBufferPointer) -> Void)?

    /// Registrations of payload memory for sends (local access only), cached; flushed
    /// at tear-down.
    public let sendRegistrations: MRCache<Domain>
    /// Registrations of memory the peer reads by RDMA READ (an SMB2 WRITE's data):
    /// exactly the bytes described, each deregistered at ``release(_:)``.
    public let peerReadableRegistrations: ExactRegistrations<Domain>
    /// Registrations of memory the peer writes by RDMA WRITE (an SMB2 READ's buffer):
    /// exactly the bytes described, each deregistered at ``release(_:)``.
    public let peerWritableRegistrations: ExactRegistrations<Domain>

    let arena: UnsafeMutableRawBufferPointer
    let arenaRegion: Domain.Region
    package let sendSlotCount: Int
    package let receiveSlotCount: Int
    /// Each send slot's message as a plan of one request: SGE 0 (the header, reserved)
    /// and up to ``SMBDirectConfiguration/maxPayloadSGEs`` extracted straight from the
    /// payload; the plan holds what extraction retained until the send completes.
    let sendPlans: [WorkRequestPlan]
    /// Whether each send slot's send is posted and has not completed.
    var sendInFlight: [Bool]
    package internal(set) var freeSendSlots: [Int]
    let completions: UnsafeMutableBufferPointer<WorkCompletion>
    /// The sends built and not posted yet, with their slots in ``stagedSlots``: the
    /// fragments of a message are posted as one chain, one doorbell for up to
    /// ``maxStagedSends`` of them (on a user-space provider each post is a system call).
    let stagedSends: UnsafeMutableBufferPointer<SendWorkRequest>
    var stagedSlots: [Int]
    /// The most sends posted in one chain.
    static var maxStagedSends: Int { 16 }
    var reassembler: FragmentReassembler
    var inbox: [[UInt8]] = []
    var inboxHead = 0
    /// The bytes of the messages in ``inbox`` that the application has not read.
    var inboxBytes = 0
    /// Whether each receive slot is posted and has not completed.
    var receivePosted: [Bool]
    /// Receive slots that completed while unread messages filled the backlog (a
    /// message being reassembled does not count: only whole messages can be read):
    /// reposted as the
    /// application reads, so that the peer's credits follow what was consumed.
    package internal(set) var parkedReceives: [Int] = []
    package internal(set) var sendsInFlight = 0
    package internal(set) var receivesInFlight = 0
    package internal(set) var rdmaInFlight = 0
    /// Whether each RDMA operation slot (at most ``SMBDirectConfiguration/maxRDMAOperations``
    /// at once) holds a posted operation that has not completed.
    var rdmaSlotInFlight: [Bool]
    /// Set when receives were reposted: a grant may be due.
    var grantCheckPending = false
    /// Set when the peer asked for a prompt answer.
    var answerOwed = false
    var lastArrival = ContinuousClock.now
    var keepaliveSentAt: ContinuousClock.Instant?
    var isTornDown = false
    /// The connection-manager link ``watch(_:)`` was given, if any.
    var link: WatchedLink?
    /// Why tear-down could not destroy the queue pair, if it could not: the arena and
    /// the memory unfinished sends point at were then kept (leaked on purpose), since
    /// the device may still reach them.
    public internal(set) var teardownError: VerbsError?
    /// The completions of the batch being handled that are not handled yet: if one
    /// of them ends the connection, tear-down accounts for the rest, which are off the
    /// completion queue already.
    var unhandledCompletions: Range<Int> = 0..<0

    /// Creates the connection's completion queue, queue pair and registered buffers in `domain`.
    public init(domain: Domain, role: Role, configuration: SMBDirectConfiguration = SMBDirectConfiguration()) throws(SMBDirectError) {
        let attributes = domain.attributes
        let rdmaSlots = configuration.maxRDMAOperations
        let sendSlotCount = min(configuration.sendCreditTarget, attributes.maxQueuePairWorkRequests - rdmaSlots)
        let receiveSlotCount = min(configuration.receiveCreditMax, attributes.maxQueuePairWorkRequests)
        precondition(sendSlotCount > 0, "the device's queues are too shallow for \(rdmaSlots) RDMA operations")
        let capabilities = QueuePairCapabilities(
            maxSendWorkRequests: sendSlotCount + rdmaSlots, maxReceiveWorkRequests: receiveSlotCount,
            maxSendSGEs: 1 + configuration.maxPayloadSGEs, maxReceiveSGEs: 1)
        let arenaSize = sendSlotCount * configuration.maxSendSize + receiveSlotCount * configuration.maxReceiveSize
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: arenaSize, alignment: pageSize)
        do {
            (completionQueue, queuePair, arenaRegion) = try Self.makeResources(
                in: domain, capabilities: capabilities, arena: UnsafeRawBufferPointer(arena))
        } catch {
            arena.deallocate()
            throw .verbs(error)
        }
        self.role = role
        self.configuration = configuration
        self.domain = domain
        self.arena = arena
        self.sendSlotCount = sendSlotCount
        self.receiveSlotCount = receiveSlotCount
        let messageLimits = WorkRequestPlan.Limits(maxSGEs: 1 + configuration.maxPayloadSGEs, reservedSGEs: 1,
                                                   maxMessageSize: configuration.maxSendSize)
        sendPlans = (0..<sendSlotCount).map { _ in WorkRequestPlan(requestCapacity: 1, limits: messageLimits) }
        sendInFlight = Array(repeating: false, count: sendSlotCount)
        receivePosted = Array(repeating: false, count: receiveSlotCount)
        rdmaSlotInFlight = Array(repeating: false, count: rdmaSlots)
        freeSendSlots = Array((0..<sendSlotCount).reversed())
        completions = .allocate(capacity: 32)
        stagedSends = .allocate(capacity: min(Self.maxStagedSends, sendSlotCount))
        stagedSlots = []
        stagedSlots.reserveCapacity(stagedSends.count)
        completions.initialize(repeating: WorkCompletion(id: 0, status: .success, opcode: .send, byteCount: 0, queuePairNumber: 0))
        credits = SMBDirectCredits(target: configuration.sendCreditTarget, maxGrant: configuration.maxCreditsPerGrant)
        reassembler = FragmentReassembler(maxMessageSize: configuration.maxFragmentedSize)
        sendRegistrations = MRCache(domain: domain, access: [])
        peerReadableRegistrations = ExactRegistrations(domain: domain, access: .remoteRead)
        peerWritableRegistrations = ExactRegistrations(domain: domain, access: [.localWrite, .remoteWrite])
    }

    /// Creates the completion queue, the queue pair reporting to it, and the arena's
    /// registration, all or none.
    private static func makeResources(
        in domain: Domain, capabilities: QueuePairCapabilities, arena: UnsafeRawBufferPointer
    ) throws(VerbsError) -> (Domain.CompletionQueueType, Domain.QueuePairType, Domain.Region) {
        // With a channel of its own, so that blocking operations sleep instead of spinning.
        let queue = try domain.createCompletionQueue(
            capacity: capabilities.maxSendWorkRequests + capabilities.maxReceiveWorkRequests,
            channel: try domain.createCompletionChannel())
        let pair: Domain.QueuePairType
        do {
            pair = try domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue, capabilities: capabilities)
        } catch {
            try? queue.close()
            throw error
        }
        do {
            let region = try domain.registerMemory(
                address: UInt(bitPattern: arena.baseAddress), length: arena.count, access: .localWrite)
            return (queue, pair, region)
        } catch {
            try? pair.close()
            try? queue.close()
            throw error
        }
    }

    deinit {
        if !isTornDown { tearDown() }
        completions.deallocate()
        stagedSends.deallocate()
    }

    // MARK: Buffers

    /// The header buffer of send slot `slot`.
    func sendBuffer(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        let size = configuration.maxSendSize
        return UnsafeMutableRawBufferPointer(rebasing: arena[slot * size..<(slot + 1) * size])
    }

    /// The buffer of receive slot `slot`.
    func receiveBuffer(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        let start = sendSlotCount * configuration.maxSendSize + slot * configuration.maxReceiveSize
        return UnsafeMutableRawBufferPointer(rebasing: arena[start..<start + configuration.maxReceiveSize])
    }

    static func workID(_ kind: WorkKind, _ index: Int) -> UInt64 { kind.rawValue << 32 | UInt64(index) }

    func postReceive(_ slot: Int) throws(SMBDirectError) {
        let buffer = receiveBuffer(slot)
        var sge = SGE(address: UInt64(UInt(bitPattern: buffer.baseAddress)), length: UInt32(buffer.count), lkey: arenaRegion.lkey)
        do {
            try withUnsafePointer(to: &sge) { (pointer) throws(VerbsError) in
                try queuePair.postReceive(ReceiveWorkRequest(
                    id: Self.workID(.receive, slot), sges: UnsafeBufferPointer(start: pointer, count: 1)))
            }
        } catch {
            throw fail(.verbs(error))
        }
        receivePosted[slot] = true
        receivesInFlight += 1
    }

    /// The most bytes of received data the connection holds at once, whatever the
    /// peer sends: unread messages up to the backlog plus the message that crossed
    /// it, the buffer of one message being reassembled, and what the peer can still
    /// send with the credits it holds (one receive buffer each).
    public var receiveMemoryBound: Int {
        configuration.maxReceiveBacklog + 2 * configuration.maxFragmentedSize
            + receiveSlotCount * configuration.maxReceiveSize
    }

    /// The bytes of received data the connection holds now: whole messages not yet
    /// read, and the buffer of a message being reassembled.
    public var heldReceiveBytes: Int { inboxBytes + reassembler.reservedBytes }

    // MARK: Driving

    /// Processes every completion that has arrived, without blocking: releases what
    /// finished sends retained, decodes and reassembles received messages, reposts
    /// their receives, and sends the credit grants and keepalive answers that are due.
    ///
    /// - Throws: The error that ended the connection (now or earlier), or
    ///   ``SMBDirectError/notConnected`` before ``start()`` and after ``close()``.
    public func progress() throws(SMBDirectError) {
        try checkUsable()
        try pollCompletions()
        try sendDueMessages()
        try checkKeepalive()
    }

    /// Handles every completion that has arrived, and sends nothing of its own.
    func pollCompletions() throws(SMBDirectError) {
        while true {
            let polled: Int
            do { polled = try completionQueue.poll(into: completions) } catch { throw fail(.verbs(error)) }
            try handleCompletions(polled)
            if polled < completions.count { return }
        }
    }

    /// Handles the first `count` entries of ``completions``.
    private func handleCompletions(_ count: Int) throws(SMBDirectError) {
        for index in 0..<count {
            unhandledCompletions = index + 1..<count
            try handle(completions[index])
        }
        unhandledCompletions = 0..<0
    }

    /// Sleeps on the completion queue's channel until a completion arrives or `limit`
    /// passes, and handles what arrived (arm, poll again, then `poll(2)`: no spinning).
    private func sleepForCompletions(atMost limit: Duration) throws(SMBDirectError) {
        let moved: Int
        do {
            moved = try completionQueue.wait(into: completions, timeout: limit, interruption: link?.descriptor)
        } catch {
            throw fail(.verbs(error))
        }
        try handleCompletions(moved)
    }

    /// Whether a keepalive was sent and no message has arrived since.
    public var awaitsKeepaliveAnswer: Bool { keepaliveSentAt != nil }

    /// Throws unless the connection is negotiating or connected.
    func checkUsable() throws(SMBDirectError) {
        switch state {
        case .negotiating, .connected: return
        case .failed(let error): throw error
        case .idle, .closed: throw .notConnected
        }
    }

    /// Progresses, calling ``idleHandler`` between rounds, until `done` holds.
    ///
    /// Without an idle handler and with a completion queue created with a channel, the
    /// thread sleeps on the channel between rounds instead of spinning: it wakes for the
    /// next completion, or after at most half the keepalive interval to keep the
    /// keepalive on time. With an idle handler (an in-process peer to drive) or a queue
    /// without a channel it polls.
    ///
    /// - Throws: ``SMBDirectError/timedOut(_:)`` after ``SMBDirectConfiguration/timeout``
    ///   (the connection fails then), or what ``progress()`` throws.
    /// With `sending` false only completions are handled (an orderly close sends nothing new).
    func wait(for what: @autoclosure () -> String, sending: Bool = true, until done: () -> Bool) throws(SMBDirectError) {
        let step = { [unowned self] () throws(SMBDirectError) in
            try checkLink()
            if sending { try progress() } else { try checkUsable(); try pollCompletions() }
        }
        try step()
        if done() { return }
        let deadline = ContinuousClock.now.advanced(by: configuration.timeout)
        var rounds = 0
        let sleeps = idleHandler == nil && completionQueue.channel != nil
        while true {
            if sleeps {
                let left = deadline - ContinuousClock.now
                if left <= .zero { throw fail(.timedOut(what())) }
                try sleepForCompletions(atMost: min(left, configuration.keepaliveInterval / 2))
            } else {
                idleHandler?()
            }
            try step()
            if done() { return }
            rounds &+= 1
            if rounds & 255 == 0, ContinuousClock.now > deadline { throw fail(.timedOut(what())) }
        }
    }
}
