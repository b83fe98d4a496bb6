#if RDMA
import FoundationEssentials
import Glibc
import RDMASGE

/// One protection domain with two connected RC queue pairs, `a` and `b`, each
/// reporting sends and receives to its own completion queue, on any verbs backend.
final class Rig<Device: VerbsDevice> {
    typealias Domain = Device.Domain
    typealias Queue = Domain.CompletionQueueType
    typealias Pair = Domain.QueuePairType

    static var capabilities: QueuePairCapabilities {
        QueuePairCapabilities(maxSendWorkRequests: 64, maxReceiveWorkRequests: 64, maxSendSGEs: 16, maxReceiveSGEs: 16)
    }

    let device: Device
    let domain: Domain
    let aQueue: Queue
    let bQueue: Queue
    let a: Pair
    let b: Pair

    /// Makes the rig; `connect` brings both queue pairs to RTS (by default, the raw path:
    /// endpoints exchanged as JSON).
    init(device: Device, domain: Domain, capabilities: QueuePairCapabilities = Rig.capabilities,
         connect: (Pair, Pair) throws -> Void = { a, b in try connectThroughJSON(a, b) }) throws {
        self.device = device
        self.domain = domain
        aQueue = try domain.createCompletionQueue(capacity: 512)
        bQueue = try domain.createCompletionQueue(capacity: 512)
        a = try domain.createQueuePair(sendCompletions: aQueue, receiveCompletions: aQueue, capabilities: capabilities)
        b = try domain.createQueuePair(sendCompletions: bQueue, receiveCompletions: bQueue, capabilities: capabilities)
        try connect(a, b)
    }

    /// Destroys the queue pairs, then the completion queues.
    func close() throws {
        try a.close()
        try b.close()
        try aQueue.close()
        try bQueue.close()
    }

    /// Polls `queue` until `count` completions came, for at most `seconds`.
    func drain(_ queue: Queue, count: Int, seconds: Double = 60) throws -> [WorkCompletion] {
        var completions: [WorkCompletion] = []
        let deadline = now() + seconds
        var idle = 0
        while completions.count < count {
            if let completion = try queue.poll() {
                completions.append(completion)
                idle = 0
                continue
            }
            idle += 1
            if idle % 1024 == 0 {
                guard now() < deadline else {
                    throw Failure("\(completions.count) of \(count) completions within \(seconds) s")
                }
                sched_yield()
            }
        }
        return completions
    }

    /// Posts one send of `sges` on `pair`, signalled, with id `id`.
    func post(_ sges: [SGE], on pair: Pair, id: UInt64, opcode: SendOpcode, remoteAddress: UInt64 = 0, rkey: UInt32 = 0) throws {
        try sges.withUnsafeBufferPointer { pointer in
            try pair.postSend(SendWorkRequest(id: id, opcode: opcode, sges: pointer, flags: .signaled,
                                              remoteAddress: remoteAddress, rkey: rkey))
        }
    }
}

/// `endpoint` as the JSON text a program would send its peer.
func json(_ endpoint: QueuePairEndpoint) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: try encoder.encode(endpoint), as: UTF8.self)
}

/// Brings `a` and `b` through RESET → INIT → RTR → RTS as two programs would: each
/// learns the other's endpoint only from the JSON text the other sent.
func connectThroughJSON<Pair: QueuePair>(_ a: Pair, _ b: Pair) throws {
    let decoder = JSONDecoder()
    let remoteOfA = try decoder.decode(QueuePairEndpoint.self, from: Data(try json(b.endpoint).utf8))
    let remoteOfB = try decoder.decode(QueuePairEndpoint.self, from: Data(try json(a.endpoint).utf8))
    for state in [QueuePairState.reset, .initialized, .readyToReceive, .readyToSend] {
        try a.modify(to: state, remote: state == .readyToReceive ? remoteOfA : nil)
        try b.modify(to: state, remote: state == .readyToReceive ? remoteOfB : nil)
    }
}

/// What both backends must agree on for one completion (the requester's byte count
/// is left out: libibverbs reports the message size there, SoftVerbs 0).
func summary(_ completion: WorkCompletion, requester: Bool) -> String {
    guard completion.status == .success else { return "\(completion.id):\(completion.status)" }
    if requester { return "\(completion.id):\(completion.opcode)" }
    let immediate = completion.immediateData.map { " imm=\(String($0, radix: 16))" } ?? ""
    return "\(completion.id):\(completion.opcode) \(completion.byteCount)B\(immediate)"
}
#endif
