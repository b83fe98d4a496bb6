import Glibc
import IterExtract
import RDMASGE
import TestKit
import SoftVerbs

/// A SoftVerbs device with one domain and two connected queue pairs, each with its
/// own completion queue, which raise events on completion channels when asked to.
final class VerbsPair: @unchecked Sendable {
    /// Which completion channels the queues raise their events on.
    enum Channels {
        /// None: the queues are polled.
        case none
        /// One channel per queue.
        case separate
        /// One channel for both queues.
        case shared
    }

    let device: SoftVerbs
    let domain: SoftProtectionDomain
    let senderChannel: SoftCompletionChannel?
    let receiverChannel: SoftCompletionChannel?
    let senderQueue: SoftCompletionQueue
    let receiverQueue: SoftCompletionQueue
    let sender: SoftQueuePair
    let receiver: SoftQueuePair

    init(attributes: DeviceAttributes = SoftVerbs.defaultAttributes,
         capabilities: QueuePairCapabilities = QueuePairCapabilities(maxSendWorkRequests: 256, maxReceiveWorkRequests: 256,
                                                                    maxSendSGEs: 6, maxReceiveSGEs: 6, maxInlineData: 64),
         queueCapacity: Int = 1024, channels: Channels = .none, connect: Bool = true, tracksPhysicalPages: Bool = false) throws {
        device = SoftVerbs(attributes: attributes, tracksPhysicalPages: tracksPhysicalPages)
        domain = try device.allocateProtectionDomain()
        senderChannel = channels == .none ? nil : try domain.createCompletionChannel()
        receiverChannel = channels == .separate ? try domain.createCompletionChannel() : senderChannel
        senderQueue = try domain.createCompletionQueue(capacity: queueCapacity, channel: senderChannel)
        receiverQueue = try domain.createCompletionQueue(capacity: queueCapacity, channel: receiverChannel)
        sender = try domain.createQueuePair(sendCompletions: senderQueue, receiveCompletions: senderQueue, capabilities: capabilities)
        receiver = try domain.createQueuePair(sendCompletions: receiverQueue, receiveCompletions: receiverQueue, capabilities: capabilities)
        if connect { try SoftQueuePair.connect(sender, receiver) }
    }

    /// Every completion waiting on `queue`.
    func drain(_ queue: SoftCompletionQueue) throws -> [WorkCompletion] {
        var result: [WorkCompletion] = []
        while let completion = try queue.poll() { result.append(completion) }
        return result
    }

    /// Posts a send of `sges` (copied to stable storage for the call).
    func send(_ sges: [SGE], id: UInt64 = 1, opcode: SendOpcode = .send, flags: SendFlags = .signaled,
              immediateData: UInt32 = 0, remoteAddress: UInt64 = 0, rkey: UInt32 = 0, on pair: SoftQueuePair? = nil) throws {
        try sges.withUnsafeBufferPointer { pointer in
            try (pair ?? sender).postSend(SendWorkRequest(id: id, opcode: opcode, sges: pointer, flags: flags,
                                                          immediateData: immediateData, remoteAddress: remoteAddress, rkey: rkey))
        }
    }

    /// Posts a receive over `sges` on the receiver.
    func receive(_ sges: [SGE], id: UInt64 = 100, on pair: SoftQueuePair? = nil) throws {
        try sges.withUnsafeBufferPointer { pointer in
            try (pair ?? receiver).postReceive(ReceiveWorkRequest(id: id, sges: pointer))
        }
    }
}

/// A page-aligned buffer of `count` bytes from its own pool, freed with the object.
final class PlainBuffer: @unchecked Sendable {
    let pool: PagePool
    let folio: Folio
    init(pages: Int) {
        pool = try! PagePool(pageCount: pages)
        let order = (0...Folio.maxOrder).first { 1 << $0 >= pages }!
        folio = try! pool.allocateFolio(order: order)
        memset(folio.bytes.baseAddress!, 0, folio.size)
    }
    var bytes: UnsafeMutableRawBufferPointer { folio.bytes }
    var address: UInt { folio.address }
}

func sge(_ address: UInt, _ length: Int, _ lkey: UInt32) -> SGE {
    SGE(address: UInt64(address), length: UInt32(length), lkey: lkey)
}

/// A cache over a fresh SoftVerbs domain and a retaining lookup of 8 bytes of a
/// one-page pool, for exit tests (whose bodies capture nothing); the pool comes back
/// too, to stay mapped while the test runs.
func cacheWithRetainedLookup() -> (cache: MRCache<SoftProtectionDomain>, lkey: UInt32, memory: PagePool) {
    let cache = MRCache(domain: try! SoftVerbs().allocateProtectionDomain())
    let memory = try! PagePool(pageCount: 1)
    let resolution = try! cache.resolve(MemoryRange(address: memory.addressRange.lowerBound, length: 8),
                                        access: [], retaining: true)
    return (cache, resolution.lkey, memory)
}
