#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CEventPoll
import Verbs

/// Everything a ``SoftVerbs`` device knows, behind the device's one lock: regions,
/// completion queues, queue pairs, and the engine that executes work requests.
///
/// Requests execute at post time, in order per queue pair, by real memory copies.
/// A request that needs a receive at the peer waits, with every later request of its
/// queue pair, until the peer posts one (an unbounded receiver-not-ready retry).
struct SoftVerbsState {
    struct Region {
        var domain: UInt32
        var address: UInt
        var length: Int
        var access: AccessFlags
        var rkey: UInt32
        /// The physical frames behind the region's pages at registration, held, on a
        /// device that tracks physical pages; `nil` otherwise.
        var snapshot: FrameSnapshot?

        func contains(_ address: UInt64, _ length: Int) -> Bool {
            let start = UInt(truncatingIfNeeded: address)
            guard UInt64(start) == address, start >= self.address else { return false }
            let (end, overflow) = start.addingReportingOverflow(UInt(length))
            return !overflow && end <= self.address &+ UInt(self.length)
        }
    }

    struct Entry {
        var completion: WorkCompletion
        var pair: UInt32
        var sendSlots: Int
        var receiveSlots: Int
    }

    struct Queue {
        var capacity: Int
        var reserved = 0
        var users = 0
        var entries: [Entry] = []
        var head = 0
        /// The channel the queue raises events on.
        var channel: UInt32?
        /// How the queue is armed: `nil` when not, else whether for solicited receives only.
        var armedSolicitedOnly: Bool?
        /// Whether an event for the queue was taken from its channel and not yet reported.
        var notified = false
    }

    /// A completion channel: the queues whose events wait on it, in order, and the
    /// `eventfd(2)` that is readable while any wait.
    struct Channel {
        var descriptor: Int32
        var events: [UInt32] = []
        var users = 0
    }

    struct PendingSend {
        var id: UInt64
        var opcode: SendOpcode
        var sges: [SGE]
        var signaled: Bool
        /// Whether the receiver's completion raises a solicited event (`IBV_SEND_SOLICITED`).
        var solicited: Bool
        var immediateData: UInt32
        var remoteAddress: UInt64
        var rkey: UInt32
        /// Inline data, copied at post time.
        var inlineData: [UInt8]?
    }

    struct PostedReceive {
        var id: UInt64
        var sges: [SGE]
    }

    struct Pair {
        var domain: UInt32
        var sendQueue: UInt32
        var receiveQueue: UInt32
        var capabilities: QueuePairCapabilities
        var state = QueuePairState.reset
        var remote: UInt32?
        /// The PSN the remote queue pair's packets must start at (`rq_psn`, set in RTR).
        var receivePSN: UInt32?
        /// The PSN this queue pair's packets start at (`sq_psn`, set in RTS).
        var sendPSN: UInt32?
        var sends: [PendingSend] = []
        var receives: [PostedReceive] = []
        var sendSlots = 0
        var receiveSlots = 0
        var unsignalledRun = 0
    }

    let attributes: DeviceAttributes
    /// Whether regions record their physical frames and accesses check them.
    let tracksPhysicalPages: Bool
    /// Whether regions keep their pages out of a `fork` child (`SoftForkProtection`).
    let forkProtection: Bool
    var nextHandle: UInt32 = 1
    var domainUsers: [UInt32: Int] = [:]
    var regions: [UInt32: Region] = [:]
    var regionsByRKey: [UInt32: UInt32] = [:]
    var queues: [UInt32: Queue] = [:]
    var pairs: [UInt32: Pair] = [:]
    var channels: [UInt32: Channel] = [:]
    var faults = SoftVerbsFaults()
    /// Whether the port's link is up; while it is down, sends fail as a real link's do.
    var portActive = true
    /// Asynchronous events not yet taken, and the `eventfd(2)` readable while any wait.
    var deviceEvents: [DeviceEvent] = []
    let deviceEventDescriptor: Int32 = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))

    init(attributes: DeviceAttributes, tracksPhysicalPages: Bool, forkProtection: Bool) {
        self.attributes = attributes
        self.tracksPhysicalPages = tracksPhysicalPages
        self.forkProtection = forkProtection
    }

    mutating func makeHandle() -> UInt32 {
        defer { nextHandle &+= 1 }
        return nextHandle
    }

    // MARK: Resources

    mutating func register(domain: UInt32, address: UInt, length: Int, access: AccessFlags) throws(VerbsError) -> (lkey: UInt32, rkey: UInt32) {
        guard length > 0, !address.addingReportingOverflow(UInt(length)).overflow else {
            throw VerbsError(.registerMemory, errno: EINVAL, "\(length) bytes at 0x\(String(address, radix: 16)) is no valid range")
        }
        // libibverbs marks the range before the kernel checks anything else, and unmarks
        // it when the kernel refuses the registration.
        if forkProtection {
            try SoftForkProtection.shared.withLock { (pages) throws(VerbsError) in try pages.hold(address: address, length: length) }
        }
        do {
            try checkRegistrable(address: address, length: length, access: access)
        } catch {
            if forkProtection { SoftForkProtection.shared.withLock { $0.release(address: address, length: length) } }
            throw error
        }
        let lkey = makeHandle() << 8 | 0x11
        let rkey = makeHandle() << 8 | 0x22
        regions[lkey] = Region(domain: domain, address: address, length: length, access: access, rkey: rkey,
                               snapshot: tracksPhysicalPages ? PageFrames.snapshot(address: address, length: length) : nil)
        regionsByRKey[rkey] = lkey
        domainUsers[domain, default: 0] += 1
        return (lkey, rkey)
    }

    /// What the kernel checks when `ibv_reg_mr` asks it to register a valid range.
    private mutating func checkRegistrable(address: UInt, length: Int, access: AccessFlags) throws(VerbsError) {
        guard length <= attributes.maxMemoryRegionSize else {
            throw VerbsError(.registerMemory, errno: EINVAL, "\(length) bytes exceed max_mr_size \(attributes.maxMemoryRegionSize)")
        }
        if !access.intersection([.remoteWrite, .remoteAtomic]).isEmpty, !access.contains(.localWrite) {
            throw VerbsError(.registerMemory, errno: EINVAL, "remote write or atomic access needs local write access")
        }
        guard regions.count < attributes.maxMemoryRegions else {
            throw VerbsError(.registerMemory, errno: ENOMEM, "the device has \(attributes.maxMemoryRegions) regions already")
        }
        guard Self.isMapped(address: address, length: length) else {
            throw VerbsError(.registerMemory, errno: EFAULT, "\(length) bytes at 0x\(String(address, radix: 16)) are not all mapped")
        }
        if faults.registrationFails() {
            throw VerbsError(.registerMemory, errno: ENOMEM, "injected registration failure")
        }
    }

    /// Whether every page of `length` bytes at `address` (a range that does not wrap) is
    /// mapped in this process.
    ///
    /// `ibv_reg_mr` pins the pages it registers (`get_user_pages`) and fails with `EFAULT`
    /// when part of the range is not mapped; SoftVerbs moves data by real memory copies,
    /// so it refuses the same ranges. `msync(2)` with `MS_ASYNC` fails with `ENOMEM` for
    /// a range with unmapped pages and otherwise does nothing (it starts no writeback);
    /// it walks the process's mappings, not its pages, so it costs one system call
    /// whatever the length. (`mincore(2)` answers the same question but fills a byte per
    /// page and costs about four times as much.) A mapped page that `ibv_reg_mr` would
    /// still refuse, such as one without access or a read-only one registered for local
    /// write, is not detected.
    static func isMapped(address: UInt, length: Int) -> Bool {
        let first = address - address % systemPageSize
        return msync(UnsafeMutableRawPointer(bitPattern: first), Int(address - first) + length, MS_ASYNC) == 0
    }

    /// The size of the pages `msync(2)` wants its start aligned to.
    private static let systemPageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))

    mutating func deregister(lkey: UInt32) {
        guard let region = regions.removeValue(forKey: lkey) else { return }
        region.snapshot?.release()
        if forkProtection { SoftForkProtection.shared.withLock { $0.release(address: region.address, length: region.length) } }
        regionsByRKey[region.rkey] = nil
        domainUsers[region.domain, default: 1] -= 1
    }

    mutating func createPair(domain: UInt32, sendQueue: UInt32, receiveQueue: UInt32,
                             capabilities caps: QueuePairCapabilities) throws(VerbsError) -> UInt32 {
        func refuse(_ reason: String) -> VerbsError { VerbsError(.createQueuePair, errno: EINVAL, reason) }
        guard (1...attributes.maxQueuePairWorkRequests).contains(caps.maxSendWorkRequests),
              (1...attributes.maxQueuePairWorkRequests).contains(caps.maxReceiveWorkRequests)
        else { throw refuse("queue depths must be 1...\(attributes.maxQueuePairWorkRequests)") }
        guard (1...attributes.maxSGEs).contains(caps.maxSendSGEs), (1...attributes.maxSGEs).contains(caps.maxReceiveSGEs)
        else { throw refuse("SGE limits must be 1...\(attributes.maxSGEs)") }
        guard (0...attributes.maxInlineData).contains(caps.maxInlineData)
        else { throw refuse("inline data must be 0...\(attributes.maxInlineData)") }
        guard queues[sendQueue] != nil, queues[receiveQueue] != nil else { throw refuse("unknown completion queue") }
        // Every outstanding request holds a completion-queue entry until it is polled,
        // so a queue that cannot hold every request of its queue pairs is refused
        // rather than overrun.
        let sendNeed = caps.maxSendWorkRequests + (sendQueue == receiveQueue ? caps.maxReceiveWorkRequests : 0)
        guard queues[sendQueue]!.reserved + sendNeed <= queues[sendQueue]!.capacity,
              sendQueue == receiveQueue
                || queues[receiveQueue]!.reserved + caps.maxReceiveWorkRequests <= queues[receiveQueue]!.capacity
        else { throw refuse("the completion queues cannot hold every request of the queue pair") }
        queues[sendQueue]!.reserved += caps.maxSendWorkRequests
        queues[sendQueue]!.users += 1
        queues[receiveQueue]!.reserved += caps.maxReceiveWorkRequests
        queues[receiveQueue]!.users += 1
        let number = makeHandle()
        pairs[number] = Pair(domain: domain, sendQueue: sendQueue, receiveQueue: receiveQueue, capabilities: caps)
        domainUsers[domain, default: 0] += 1
        return number
    }

    mutating func destroyPair(_ number: UInt32) {
        guard let pair = pairs.removeValue(forKey: number) else { return }
        queues[pair.sendQueue]?.reserved -= pair.capabilities.maxSendWorkRequests
        queues[pair.sendQueue]?.users -= 1
        queues[pair.receiveQueue]?.reserved -= pair.capabilities.maxReceiveWorkRequests
        queues[pair.receiveQueue]?.users -= 1
        domainUsers[pair.domain, default: 1] -= 1
    }
}
