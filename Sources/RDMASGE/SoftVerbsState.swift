#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    }

    struct PendingSend {
        var id: UInt64
        var opcode: SendOpcode
        var sges: [SGE]
        var signaled: Bool
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
        var sends: [PendingSend] = []
        var receives: [PostedReceive] = []
        var sendSlots = 0
        var receiveSlots = 0
        var unsignalledRun = 0
    }

    let attributes: DeviceAttributes
    var nextHandle: UInt32 = 1
    var domainUsers: [UInt32: Int] = [:]
    var regions: [UInt32: Region] = [:]
    var regionsByRKey: [UInt32: UInt32] = [:]
    var queues: [UInt32: Queue] = [:]
    var pairs: [UInt32: Pair] = [:]
    var faults = SoftVerbsFaults()

    init(attributes: DeviceAttributes) { self.attributes = attributes }

    mutating func makeHandle() -> UInt32 {
        defer { nextHandle &+= 1 }
        return nextHandle
    }

    // MARK: Resources

    mutating func register(domain: UInt32, address: UInt, length: Int, access: AccessFlags) throws(VerbsError) -> (lkey: UInt32, rkey: UInt32) {
        guard length > 0, !address.addingReportingOverflow(UInt(length)).overflow else {
            throw VerbsError(.registerMemory, errno: EINVAL, "\(length) bytes at 0x\(String(address, radix: 16)) is no valid range")
        }
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
        let lkey = makeHandle() << 8 | 0x11
        let rkey = makeHandle() << 8 | 0x22
        regions[lkey] = Region(domain: domain, address: address, length: length, access: access, rkey: rkey)
        regionsByRKey[rkey] = lkey
        domainUsers[domain, default: 0] += 1
        return (lkey, rkey)
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

    // MARK: State transitions

    mutating func modify(_ number: UInt32, to state: QueuePairState, remote: UInt32?) throws(VerbsError) {
        let current = pairs[number]!.state
        switch (current, state) {
        case (_, .error):
            moveToError(number)
        case (_, .reset):
            pairs[number]!.sends = []
            pairs[number]!.receives = []
            pairs[number]!.sendSlots = 0
            pairs[number]!.receiveSlots = 0
            pairs[number]!.unsignalledRun = 0
            pairs[number]!.remote = nil
            pairs[number]!.state = .reset
        case (.reset, .initialized), (.readyToReceive, .readyToSend):
            pairs[number]!.state = state
        case (.initialized, .readyToReceive):
            guard let remote else {
                throw VerbsError(.modifyQueuePair, errno: EINVAL, "RTR needs the remote queue pair's endpoint")
            }
            pairs[number]!.remote = remote
            pairs[number]!.state = state
        default:
            throw VerbsError(.modifyQueuePair, errno: EINVAL, "no transition from \(current) to \(state)")
        }
    }

    /// Moves a queue pair to the error state and flushes every outstanding request.
    mutating func moveToError(_ number: UInt32) {
        guard pairs[number] != nil else { return }
        pairs[number]!.state = .error
        let sends = pairs[number]!.sends
        let receives = pairs[number]!.receives
        pairs[number]!.sends = []
        pairs[number]!.receives = []
        for send in sends { completeSend(send, on: number, status: .workRequestFlushError) }
        for receive in receives {
            completeReceive(receive.id, on: number, status: .workRequestFlushError, opcode: .receive, byteCount: 0, immediateData: nil)
        }
    }

    // MARK: Posting

    mutating func postSend(_ number: UInt32, _ request: SendWorkRequest) throws(VerbsError) {
        let pair = pairs[number]!
        func refuse(_ errno: Int32, _ reason: String) -> VerbsError { VerbsError(.postSend, errno: errno, reason) }
        guard pair.state == .readyToSend || pair.state == .error else {
            throw refuse(EINVAL, "a queue pair in \(pair.state) cannot send")
        }
        guard request.sges.count <= pair.capabilities.maxSendSGEs else {
            throw refuse(EINVAL, "\(request.sges.count) SGEs exceed max_send_sge \(pair.capabilities.maxSendSGEs)")
        }
        let isInline = request.flags.contains(.inline)
        if isInline {
            guard request.opcode != .rdmaRead else { throw refuse(EINVAL, "an RDMA READ cannot be inline") }
            guard request.byteCount <= pair.capabilities.maxInlineData else {
                throw refuse(EINVAL, "\(request.byteCount) inline bytes exceed max_inline_data \(pair.capabilities.maxInlineData)")
            }
        }
        guard pair.sendSlots < pair.capabilities.maxSendWorkRequests else {
            throw refuse(ENOMEM, "the send queue holds \(pair.capabilities.maxSendWorkRequests) requests already")
        }
        if faults.postFails() { throw refuse(ENOMEM, "injected post failure") }
        var inlineData: [UInt8]?
        if isInline {
            var data: [UInt8] = []
            data.reserveCapacity(request.byteCount)
            for sge in request.sges {
                data.append(contentsOf: UnsafeRawBufferPointer(
                    start: UnsafeRawPointer(bitPattern: UInt(sge.address)), count: Int(sge.length)))
            }
            inlineData = data
        }
        let send = PendingSend(
            id: request.id, opcode: request.opcode, sges: Array(request.sges),
            signaled: request.flags.contains(.signaled) || pair.capabilities.signalsAll,
            immediateData: request.immediateData, remoteAddress: request.remoteAddress, rkey: request.rkey,
            inlineData: inlineData)
        pairs[number]!.sendSlots += 1
        if pair.state == .error {
            completeSend(send, on: number, status: .workRequestFlushError)
        } else {
            pairs[number]!.sends.append(send)
            progress(number)
        }
    }

    mutating func postReceive(_ number: UInt32, _ request: ReceiveWorkRequest) throws(VerbsError) {
        let pair = pairs[number]!
        func refuse(_ errno: Int32, _ reason: String) -> VerbsError { VerbsError(.postReceive, errno: errno, reason) }
        guard pair.state != .reset else { throw refuse(EINVAL, "a queue pair in RESET cannot receive") }
        guard request.sges.count <= pair.capabilities.maxReceiveSGEs else {
            throw refuse(EINVAL, "\(request.sges.count) SGEs exceed max_recv_sge \(pair.capabilities.maxReceiveSGEs)")
        }
        guard pair.receiveSlots < pair.capabilities.maxReceiveWorkRequests else {
            throw refuse(ENOMEM, "the receive queue holds \(pair.capabilities.maxReceiveWorkRequests) requests already")
        }
        if faults.postFails() { throw refuse(ENOMEM, "injected post failure") }
        pairs[number]!.receiveSlots += 1
        if pair.state == .error {
            completeReceive(request.id, on: number, status: .workRequestFlushError, opcode: .receive, byteCount: 0, immediateData: nil)
            return
        }
        pairs[number]!.receives.append(PostedReceive(id: request.id, sges: Array(request.sges)))
        if let requester = pairs.first(where: { $0.value.remote == number && !$0.value.sends.isEmpty })?.key {
            progress(requester)
        }
    }

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
        let total = send.inlineData?.count ?? send.sges.reduce(0) { $0 + Int($1.length) }
        if send.inlineData == nil {
            let needed: AccessFlags = send.opcode == .rdmaRead ? .localWrite : []
            guard localSegments(send.sges, domain: pair.domain, access: needed) != nil else { return .localProtectionError }
        }
        guard total <= attributes.maxMessageSize else { return .localLengthError }
        guard let remote = pair.remote, let peer = pairs[remote],
              peer.state == .readyToReceive || peer.state == .readyToSend
        else { return .retryExceededError }

        var target: (address: UInt, length: Int)?
        if send.opcode.isRemoteAccess {
            let needed: AccessFlags = send.opcode == .rdmaRead ? .remoteRead : .remoteWrite
            guard let lkey = regionsByRKey[send.rkey], let region = regions[lkey], region.domain == peer.domain,
                  region.access.contains(needed), region.contains(send.remoteAddress, total)
            else { return .remoteAccessError }
            target = (UInt(send.remoteAddress), total)
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
            gather(send, into: destinations)
        case .rdmaWrite, .rdmaWriteWithImmediate:
            gather(send, into: [target!])
        case .rdmaRead:
            let sources = [(address: target!.address, length: total)]
            copy(from: sources, to: localSegments(send.sges, domain: pair.domain, access: .localWrite)!)
        }
        if let receive {
            let immediate = send.opcode == .send ? nil : send.immediateData as UInt32?
            let opcode: WorkCompletionOpcode = send.opcode == .rdmaWriteWithImmediate ? .receiveRDMAWithImmediate : .receive
            completeReceive(receive.id, on: remote, status: .success, opcode: opcode, byteCount: total, immediateData: immediate)
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
    }

    mutating func completeReceive(_ id: UInt64, on number: UInt32, status: WorkCompletionStatus,
                                  opcode: WorkCompletionOpcode, byteCount: Int, immediateData: UInt32?) {
        let completion = WorkCompletion(id: id, status: status, opcode: opcode, byteCount: byteCount,
                                        immediateData: immediateData, queuePairNumber: number)
        queues[pairs[number]!.receiveQueue]!.entries.append(
            Entry(completion: completion, pair: number, sendSlots: 0, receiveSlots: 1))
    }
}
