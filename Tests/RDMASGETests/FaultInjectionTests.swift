import Glibc
import IterExtract
import RDMASGE
import TestKit
import Testing
import SoftVerbs

// Fault injection (issue 8): every RDMA path of a WorkRequestPlan over SoftVerbs, driven
// through every SoftVerbs fault at the first, middle and last point where it can strike.
//
// Each scenario runs the transfer twice on fresh, identically laid out memory: once
// without a fault (the baseline, which must move every byte and records the order of
// registrations and posts), and once with the fault armed at the Nth registration /
// post / send. From the baseline the test knows exactly which requests succeed before
// the fault, and so which error the caller must get, which completions must arrive
// with which status, and which destination bytes may have changed.

/// How the bytes travel.
enum FaultPath: String, CaseIterable, Sendable {
    /// SEND into receives posted over the peer's buffer.
    case sendReceive
    /// RDMA WRITE into the peer's region.
    case rdmaWrite
    /// RDMA READ from the peer's region into the iterator's memory.
    case rdmaRead
}

/// Who answers the extraction's key lookups.
enum FaultResolver: String, CaseIterable, Sendable {
    /// An MR cache that registers on demand (and counts references).
    case mrCache
    /// The local memory registered once as one region.
    case singleKey
}

/// The fault, by the class of operation it counts.
enum FaultKind: String, CaseIterable, Sendable {
    /// `SoftVerbsFault.registration(nth:)`: counts memory registrations.
    case registration
    /// `SoftVerbsFault.post(nth:)`: counts posts, receives and sends alike.
    case post
    /// `SoftVerbsFault.completion(nth:status:)`: counts executed sends.
    case completion
    /// The requester's queue pair is moved to the error state just before its Nth send is posted.
    case requesterQueuePairError
    /// The responder's queue pair is moved to the error state just before the Nth send is posted.
    case responderQueuePairError
}

/// Where, among the operations the fault counts, it strikes.
enum FaultPosition: String, CaseIterable, Sendable {
    case first, middle, last

    /// N for a fault class with `count` operations in the baseline.
    func nth(of count: Int) -> Int {
        switch self {
        case .first: 1
        case .middle: (count + 1) / 2
        case .last: count
        }
    }

    /// The non-success status an injected completion fault reports (varied across the matrix).
    var completionStatus: WorkCompletionStatus {
        switch self {
        case .first: .retryExceededError
        case .middle: .remoteAccessError
        case .last: .localProtectionError
        }
    }
}

struct FaultScenario: Sendable, CustomTestStringConvertible {
    var path: FaultPath
    var kind: IOIteratorKind
    var resolver: FaultResolver
    var fault: FaultKind
    var position: FaultPosition

    var testDescription: String { "\(path) \(kind) \(resolver) \(fault)@\(position)" }

    /// user-backed (pinned) IOVEC, non-user KVEC over the same memory, non-user BVEC.
    static let kinds: [IOIteratorKind] = [.iovec, .kvec, .bvec]

    /// The whole matrix: path × iterator × resolver × fault × position.
    static let all: [FaultScenario] = FaultPath.allCases.flatMap { path in
        kinds.flatMap { kind in
            FaultResolver.allCases.flatMap { resolver in
                FaultKind.allCases.flatMap { fault in
                    FaultPosition.allCases.map { FaultScenario(path: path, kind: kind, resolver: resolver, fault: fault, position: $0) }
                }
            }
        }
    }
}

/// What the caller of a transfer gets, typed.
enum TransferFailure: Error, Equatable, CustomStringConvertible {
    /// Building a plan failed (extraction, MR-cache registration).
    case extraction(RDMAError)
    /// A verbs call was refused (registration of the local region, a post).
    case verbs(VerbsError)
    /// The plan reported a send-queue completion status other than success.
    case completion(WorkCompletionStatus)
    /// A receive completed with a status other than success.
    case receive(WorkCompletionStatus)

    var description: String {
        switch self {
        case .extraction(let error): "extraction: \(error)"
        case .verbs(let error): "verbs: \(error)"
        case .completion(let status): "completion: \(status)"
        case .receive(let status): "receive: \(status)"
        }
    }
}

/// A queue pair that forwards to a SoftVerbs one, counts the sends posted through it,
/// and runs a hook just before each (to move a queue pair to error mid-transfer).
final class HookedQueuePair: QueuePair, @unchecked Sendable {
    let inner: SoftQueuePair
    var beforeSend: (Int) -> Void = { _ in }
    var afterSend: (SendWorkRequest) -> Void = { _ in }
    private(set) var sendCalls = 0

    init(_ inner: SoftQueuePair) { self.inner = inner }

    var endpoint: QueuePairEndpoint { inner.endpoint }
    var state: QueuePairState { inner.state }
    var capabilities: QueuePairCapabilities { inner.capabilities }
    func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError) {
        try inner.modify(to: state, remote: remote)
    }
    func postSend(_ request: SendWorkRequest) throws(VerbsError) {
        sendCalls += 1
        beforeSend(sendCalls)
        try inner.postSend(request)
        afterSend(request)
    }
    func postSend(chain requests: UnsafeBufferPointer<SendWorkRequest>) throws(VerbsError) {
        for (index, request) in requests.enumerated() {
            do throws(VerbsError) { try postSend(request) } catch {
                var refused = error
                refused.failedRequest = index
                throw refused
            }
        }
    }
    func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError) { try inner.postReceive(request) }
    func close() throws(VerbsError) { try inner.close() }
}

/// A completion queue that forwards to a SoftVerbs one and keeps every completion polled.
final class RecordingQueue: CompletionQueue, @unchecked Sendable {
    let inner: SoftCompletionQueue
    private(set) var completions: [WorkCompletion] = []

    init(_ inner: SoftCompletionQueue) { self.inner = inner }

    var capacity: Int { inner.capacity }
    func poll(into buffer: UnsafeMutableBufferPointer<WorkCompletion>) throws(VerbsError) -> Int {
        let n = try inner.poll(into: buffer)
        completions.append(contentsOf: buffer[..<n])
        return n
    }
    var channel: (any CompletionChannel)? { inner.channel }
    func requestNotification(solicitedOnly: Bool) throws(VerbsError) { try inner.requestNotification(solicitedOnly: solicitedOnly) }
    func takeNotification() -> Bool { inner.takeNotification() }
    func close() throws(VerbsError) { try inner.close() }

    /// Polls until the queue is empty.
    func drain() throws {
        while try poll() != nil {}
    }
}

/// Local memory (one page pool, several segments with gaps between them) and a remote
/// buffer, both filled with seeded random bytes. The layout is fixed, so two instances
/// make the same registrations and the same requests.
final class FaultMemory: @unchecked Sendable {
    /// (offset in the pool, length): pieces crossing pages, a page-aligned page, one byte.
    static let segmentLayout: [(offset: Int, length: Int)] = [
        (300, 9_000), (16_461, 30_000), (49_152, 4_096), (53_500, 20_000), (81_925, 1), (90_000, 40_000),
    ]
    /// Where the transfer lands in (or, for RDMA READ, comes from) the remote buffer.
    static let remoteOffset = 5_000

    let pool: PagePool
    let remote: PlainBuffer
    /// The segments as IOVEC, KVEC and BVEC describe them.
    let memory: IteratorMemory
    let total: Int

    init(seed: UInt64) {
        pool = try! PagePool(pageCount: 40)
        remote = PlainBuffer(pages: 32)
        let base = UInt(bitPattern: pool.baseAddress)
        let ranges = Self.segmentLayout.map { MemoryRange(address: base + UInt($0.offset), length: $0.length) }
        memory = IteratorMemory(pool: pool, segments: ranges, bioVecs: ranges.map(IteratorMemory.bioVec(over:)))
        total = Self.segmentLayout.reduce(0) { $0 + $1.length }
        precondition(Self.remoteOffset + total + 1000 <= remote.bytes.count)
        fillRandom(localBytes, seed: seed)
        fillRandom(remote.bytes, seed: seed &+ 0x9E37_79B9)
    }

    var localBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pool.baseAddress, count: pool.byteCount) }

    /// The iterator's memory, in stream order.
    var localRanges: [MemoryRange] {
        let base = UInt(bitPattern: pool.baseAddress)
        return Self.segmentLayout.map { MemoryRange(address: base + UInt($0.offset), length: $0.length) }
    }

    /// The fixture made the memory, so making the iterator cannot throw.
    func iterator(_ kind: IOIteratorKind, _ direction: IODirection) -> IOIterator { memory.iterator(kind, direction) }

    /// Both memories, as they are now.
    func snapshot() -> (local: [UInt8], remote: [UInt8]) { (Array(localBytes), Array(remote.bytes)) }

    /// The memories as they must be when the first `prefix` bytes of the transfer moved
    /// and nothing else changed, from the snapshot taken before the transfer.
    func expected(from before: (local: [UInt8], remote: [UInt8]), path: FaultPath, prefix: Int) -> (local: [UInt8], remote: [UInt8]) {
        var result = before
        let base = UInt(bitPattern: pool.baseAddress)
        var streamOffset = 0
        for range in localRanges where streamOffset < prefix {
            let n = min(range.length, prefix - streamOffset)
            let local = Int(range.address - base)
            let remote = Self.remoteOffset + streamOffset
            if path == .rdmaRead {
                result.local.replaceSubrange(local..<local + n, with: before.remote[remote..<remote + n])
            } else {
                result.remote.replaceSubrange(remote..<remote + n, with: before.local[local..<local + n])
            }
            streamOffset += n
        }
        return result
    }

    /// Where the memory differs from `image` first, described, or nil when it does not.
    func firstDifference(from image: (local: [UInt8], remote: [UInt8]), path: FaultPath) -> String? {
        let now = snapshot()
        let base = UInt(bitPattern: pool.baseAddress)
        if let i = now.local.indices.first(where: { now.local[$0] != image.local[$0] }) {
            let address = base + UInt(i)
            let inDestination = path == .rdmaRead && localRanges.contains { address >= $0.address && address < $0.address + UInt($0.length) }
            return "local byte \(i) (\(inDestination ? "inside the destination" : "outside the destination")): \(now.local[i]), expected \(image.local[i])"
        }
        if let i = now.remote.indices.first(where: { now.remote[$0] != image.remote[$0] }) {
            let inDestination = path != .rdmaRead && i >= Self.remoteOffset && i < Self.remoteOffset + total
            return "remote byte \(i) (\(inDestination ? "inside the destination" : "outside the destination / guard")): \(now.remote[i]), expected \(image.remote[i])"
        }
        return nil
    }

    /// Whether the memory equals `image`, compared with memcmp.
    func matches(_ image: (local: [UInt8], remote: [UInt8])) -> Bool {
        image.local.withUnsafeBytes { memcmp($0.baseAddress!, pool.baseAddress, pool.byteCount) == 0 }
            && image.remote.withUnsafeBytes { memcmp($0.baseAddress!, remote.bytes.baseAddress!, remote.bytes.count) == 0 }
    }
}

func fillRandom(_ bytes: UnsafeMutableRawBufferPointer, seed: UInt64) {
    var random = SplitMix64(seed: seed)
    let words = bytes.count / 8
    for i in 0..<words { bytes.storeBytes(of: random.next(), toByteOffset: i * 8, as: UInt64.self) }
    for i in words * 8..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: random.next()) }
}

/// One operation that succeeded, in the order the transfer did them.
enum TransferEvent: Equatable {
    case registration
    case build(requests: Int)
    case postReceive
    case postSend(bytes: Int)
}

/// The fault, armed: N resolved from the baseline.
enum ArmedFault {
    case device(SoftVerbsFault)
    case requesterError(beforeSend: Int)
    case responderError(beforeSend: Int)
}

/// What one transfer did and left behind.
struct TransferRecord {
    var failure: TransferFailure?
    var events: [TransferEvent] = []
    /// Identifier → bytes of every send the device accepted.
    var postedSends: [UInt64: Int] = [:]
    var postedReceives: [UInt64] = []
    var sendCompletions: [WorkCompletion] = []
    var receiveCompletions: [WorkCompletion] = []
    /// Completions that arrived on a second drain after the teardown drained everything.
    var lateCompletions = 0
    var pinnedPages = 0
    var cacheReferences = 0
    var planRetaining = false
    /// Regions registered on the device once the cache was flushed and the local region
    /// deregistered (the remote region, registered by the peer, remains).
    var regionsLeft = 0
}

/// Runs one transfer of `memory` by `path` with `resolver`, with `fault` armed, then
/// tears the connection down as a connection manager would (both queue pairs to error,
/// both completion queues drained) and releases everything.
func runTransfer(_ memory: FaultMemory, path: FaultPath, kind: IOIteratorKind, resolver: FaultResolver,
                 fault: ArmedFault?) throws -> TransferRecord {
    var record = TransferRecord()
    let verbs = try VerbsPair()
    let ledger = PinLedger(mode: .exact)
    let sender = HookedQueuePair(verbs.sender)
    let sendQueue = RecordingQueue(verbs.senderQueue)
    let receiveQueue = RecordingQueue(verbs.receiverQueue)
    // The peer's memory is registered before any fault is armed: it is not this side's transfer.
    let remoteRegion = try verbs.domain.registerMemory(memory.remote.bytes, access: .all)
    let remoteBase = UInt64(remoteRegion.address) + UInt64(FaultMemory.remoteOffset)

    switch fault {
    case .device(let deviceFault): verbs.device.inject(deviceFault)
    case .requesterError(let nth):
        sender.beforeSend = { n in if n == nth { try! verbs.sender.modify(to: .error, remote: nil) } }
    case .responderError(let nth):
        sender.beforeSend = { n in if n == nth { try! verbs.receiver.modify(to: .error, remote: nil) } }
    case nil: break
    }
    var nextSendID: UInt64 = 0
    var nextReceiveID: UInt64 = 1_000_000
    sender.afterSend = { request in
        record.postedSends[request.id] = request.byteCount
        record.events.append(.postSend(bytes: request.byteCount))
    }

    let cache = MRCache(domain: verbs.domain, access: .localWrite)
    var localRegion: SoftMemoryRegion?
    let plan = WorkRequestPlan(requestCapacity: 4, limits: .init(maxSGEs: 2, maxMessageSize: 8192))
    var iterator = memory.iterator(kind, path == .rdmaRead ? .destination : .source)

    func transfer<Keys: KeyResolver>(keys: Keys) throws(TransferFailure) {
        var moved = 0
        while iterator.count > 0 {
            let operation: WorkRequestPlan.Operation = switch path {
            case .sendReceive: .send
            case .rdmaWrite: .rdmaWrite(remoteAddress: remoteBase + UInt64(moved), rkey: remoteRegion.rkey)
            case .rdmaRead: .rdmaRead(remoteAddress: remoteBase + UInt64(moved), rkey: remoteRegion.rkey)
            }
            let registrationsBefore = cache.statistics.registrations
            let bytes: Int
            do {
                bytes = try plan.build(from: &iterator, operation: operation, keys: keys, ledger: ledger)
            } catch {
                throw .extraction(error)
            }
            for _ in registrationsBefore..<cache.statistics.registrations { record.events.append(.registration) }
            record.events.append(.build(requests: plan.requests.count))
            if path == .sendReceive {
                for request in plan.requests {
                    let id = nextReceiveID
                    nextReceiveID += 1
                    do {
                        try verbs.receive([sge(remoteRegion.address + UInt(FaultMemory.remoteOffset + moved + request.offset),
                                               request.byteCount, remoteRegion.lkey)], id: id)
                    } catch let error as VerbsError {
                        plan.release()  // nothing of the plan went out
                        throw .verbs(error)
                    } catch {
                        preconditionFailure("\(error)")
                    }
                    record.postedReceives.append(id)
                    record.events.append(.postReceive)
                }
            }
            let firstID = nextSendID
            do {
                try plan.post(on: sender, firstID: firstID, signaling: .every)
            } catch {
                nextSendID += UInt64(plan.postedCount)
                // What went out must finish before the plan gives its retention back.
                try? verbs.sender.modify(to: .error, remote: nil)
                _ = try? plan.complete(polling: sendQueue, maxEmptyPolls: 1000)
                throw .verbs(error)
            }
            nextSendID += UInt64(plan.postedCount)
            let status: WorkCompletionStatus
            do {
                status = try plan.complete(polling: sendQueue, maxEmptyPolls: 1000)
            } catch {
                throw .verbs(error)
            }
            guard status == .success else { throw .completion(status) }
            if path == .sendReceive {
                for _ in plan.requests {
                    let completion: WorkCompletion?
                    do { completion = try receiveQueue.poll() } catch { throw .verbs(error) }
                    guard let completion else { throw .receive(.generalError) }
                    guard completion.status == .success else { throw .receive(completion.status) }
                }
            }
            moved += bytes
        }
    }

    do throws(TransferFailure) {
        switch resolver {
        case .mrCache:
            try transfer(keys: cache)
        case .singleKey:
            let region: SoftMemoryRegion
            do {
                region = try verbs.domain.registerMemory(memory.localBytes, access: .localWrite)
            } catch {
                throw .verbs(error)
            }
            localRegion = region
            record.events.append(.registration)
            try transfer(keys: SingleKeyResolver(region: region))
        }
    } catch {
        record.failure = error
    }

    // Teardown: whatever is still outstanding is flushed, and every completion collected.
    try verbs.sender.modify(to: .error, remote: nil)
    try verbs.receiver.modify(to: .error, remote: nil)
    try sendQueue.drain()
    try receiveQueue.drain()
    record.sendCompletions = sendQueue.completions
    record.receiveCompletions = receiveQueue.completions
    try sendQueue.drain()
    try receiveQueue.drain()
    record.lateCompletions = sendQueue.completions.count + receiveQueue.completions.count
        - record.sendCompletions.count - record.receiveCompletions.count

    record.planRetaining = plan.isRetaining
    record.pinnedPages = ledger.pinnedPageCount
    record.cacheReferences = cache.referenceCount
    if plan.isRetaining { plan.release() }  // so that a failing case still cleans up
    cache.flush()
    try localRegion?.deregister()
    record.regionsLeft = verbs.device.registeredRegionCount
    try remoteRegion.deregister()
    return record
}

/// What the baseline says must happen when the fault strikes.
struct FaultExpectation {
    var armed: ArmedFault
    var failure: TransferFailure
    /// The sends that complete successfully before the fault.
    var successfulSends: Int
    /// The sends posted in all, counting those the fault flushes (nil: not predicted).
    var postedSends: Int
    /// The status of the send the fault strikes, followed by flushes (nil: no such send).
    var failedSendStatus: WorkCompletionStatus?
    /// The transferred-prefix lengths allowed afterwards.
    var allowedPrefixes: Set<Int>
    /// The numbers of receives allowed to complete successfully.
    var successfulReceives: Set<Int>
}

func expectation(for scenario: FaultScenario, baseline events: [TransferEvent]) -> FaultExpectation {
    let sendBytes = events.compactMap { if case .postSend(let b) = $0 { b } else { nil } }
    func count(_ matches: (TransferEvent) -> Bool) -> Int { events.filter(matches).count }
    /// The index in `events` of the `nth` event matching.
    func index(ofNth nth: Int, _ matches: (TransferEvent) -> Bool) -> Int {
        var seen = 0
        for (i, event) in events.enumerated() where matches(event) {
            seen += 1
            if seen == nth { return i }
        }
        preconditionFailure("no event \(nth)")
    }
    func sends(before index: Int) -> Int {
        events[..<index].filter { if case .postSend = $0 { true } else { false } }.count
    }
    /// The sends up to the end of the plan holding send number `send` (0-based).
    func sendsThroughPlan(of send: Int) -> Int {
        var total = 0
        for event in events {
            if case .build(let requests) = event {
                total += requests
                if total > send { return total }
            }
        }
        preconditionFailure("send \(send) is in no plan")
    }
    let isRegistration: (TransferEvent) -> Bool = { $0 == .registration }
    let isPost: (TransferEvent) -> Bool = { if case .postSend = $0 { true } else { $0 == .postReceive } }
    let isSend: (TransferEvent) -> Bool = { if case .postSend = $0 { true } else { false } }
    let bytesOfSends = { (n: Int) in sendBytes.prefix(n).reduce(0, +) }

    switch scenario.fault {
    case .registration:
        let nth = scenario.position.nth(of: count(isRegistration))
        let s = sends(before: index(ofNth: nth, isRegistration))
        let refused = VerbsError(.registerMemory, errno: ENOMEM, "")
        return FaultExpectation(
            armed: .device(.registration(nth: nth)),
            failure: scenario.resolver == .mrCache ? .extraction(.registrationFailed(refused)) : .verbs(refused),
            successfulSends: s, postedSends: s, failedSendStatus: nil, allowedPrefixes: [bytesOfSends(s)],
            successfulReceives: [s])
    case .post:
        let nth = scenario.position.nth(of: count(isPost))
        let at = index(ofNth: nth, isPost)
        let s = sends(before: at)
        let call: VerbsCall = events[at] == .postReceive ? .postReceive : .postSend
        return FaultExpectation(
            armed: .device(.post(nth: nth)), failure: .verbs(VerbsError(call, errno: ENOMEM, "")),
            successfulSends: s, postedSends: s, failedSendStatus: nil, allowedPrefixes: [bytesOfSends(s)],
            successfulReceives: [s])
    case .completion:
        let nth = scenario.position.nth(of: count(isSend))
        let status = scenario.position.completionStatus
        // The request's data may have moved (an acknowledgement lost) or not.
        return FaultExpectation(
            armed: .device(.completion(nth: nth, status: status)), failure: .completion(status),
            successfulSends: nth - 1, postedSends: sendsThroughPlan(of: nth - 1), failedSendStatus: status,
            allowedPrefixes: [bytesOfSends(nth - 1), bytesOfSends(nth)], successfulReceives: [nth - 1, nth])
    case .requesterQueuePairError:
        let nth = scenario.position.nth(of: count(isSend))
        return FaultExpectation(
            armed: .requesterError(beforeSend: nth), failure: .completion(.workRequestFlushError),
            successfulSends: nth - 1, postedSends: sendsThroughPlan(of: nth - 1), failedSendStatus: .workRequestFlushError,
            allowedPrefixes: [bytesOfSends(nth - 1)], successfulReceives: [nth - 1])
    case .responderQueuePairError:
        let nth = scenario.position.nth(of: count(isSend))
        return FaultExpectation(
            armed: .responderError(beforeSend: nth), failure: .completion(.retryExceededError),
            successfulSends: nth - 1, postedSends: sendsThroughPlan(of: nth - 1), failedSendStatus: .retryExceededError,
            allowedPrefixes: [bytesOfSends(nth - 1)], successfulReceives: [nth - 1])
    }
}

/// Checks that every posted request completed exactly once, and nothing else did.
func expectAccounted(_ completions: [WorkCompletion], posted: [UInt64], what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    let ids = completions.map(\.id)
    #expect(Set(ids).count == ids.count, "a \(what) completed twice: \(ids)", sourceLocation: sourceLocation)
    #expect(Set(ids) == Set(posted), "posted \(what)s \(posted.sorted()) vs completed \(ids.sorted())",
            sourceLocation: sourceLocation)
}

@Suite("Fault injection: every RDMA path through every SoftVerbs fault")
struct FaultInjectionTests {
    @Test("the fault gives a typed error, flushes what is outstanding, releases everything, touches nothing else",
          arguments: FaultScenario.all)
    func fault(_ scenario: FaultScenario) throws {
        let seed: UInt64 = 0x5EED_0008
        // Baseline: no fault, every byte arrives, the order of operations is recorded.
        let clean = FaultMemory(seed: seed)
        let cleanBefore = clean.snapshot()
        let baseline = try runTransfer(clean, path: scenario.path, kind: scenario.kind, resolver: scenario.resolver, fault: nil)
        try #require(baseline.failure == nil, "the baseline failed: \(String(describing: baseline.failure))")
        #expect(clean.matches(clean.expected(from: cleanBefore, path: scenario.path, prefix: clean.total)),
                "baseline bytes: \(clean.firstDifference(from: clean.expected(from: cleanBefore, path: scenario.path, prefix: clean.total), path: scenario.path) ?? "")")
        let baselineSends = baseline.events.filter { if case .postSend = $0 { true } else { false } }.count
        #expect(baseline.sendCompletions.count == baselineSends && baseline.sendCompletions.allSatisfy { $0.status == .success })

        let expected = expectation(for: scenario, baseline: baseline.events)
        // The matrix only means something if first, middle and last are different operations
        // spread over several plans (else the fixture changed and the positions collapsed).
        let builds = baseline.events.filter { if case .build = $0 { true } else { false } }.count
        let registrations = baseline.events.filter { $0 == .registration }.count
        #expect(builds >= 3 && baselineSends >= 6, "\(builds) plans, \(baselineSends) sends")
        #expect(scenario.resolver == .mrCache ? registrations >= 3 : registrations == 1, "\(registrations) registrations")

        // The same transfer, on identically laid out memory, with the fault armed.
        let memory = FaultMemory(seed: seed)
        let before = memory.snapshot()
        let record = try runTransfer(memory, path: scenario.path, kind: scenario.kind, resolver: scenario.resolver,
                                     fault: expected.armed)

        // 1. A typed error, the one the fault causes.
        #expect(record.failure == expected.failure, "got \(record.failure.map { "\($0)" } ?? "success")")

        // 2. Every request that went out completed exactly once, in order: successes, then
        //    the failed one's status, then flushes; nothing completes after the teardown.
        expectAccounted(record.sendCompletions, posted: Array(record.postedSends.keys), what: "send")
        expectAccounted(record.receiveCompletions, posted: record.postedReceives, what: "receive")
        #expect(record.lateCompletions == 0)
        #expect(record.postedSends.count == expected.postedSends)
        let sendStatuses = record.sendCompletions.sorted { $0.id < $1.id }.map(\.status)
        var expectedStatuses = Array(repeating: WorkCompletionStatus.success, count: expected.successfulSends)
        if let failed = expected.failedSendStatus {
            expectedStatuses.append(failed)
            expectedStatuses += Array(repeating: .workRequestFlushError, count: max(0, expected.postedSends - expected.successfulSends - 1))
        }
        #expect(sendStatuses == expectedStatuses)
        if scenario.path == .sendReceive {
            let receiveStatuses = record.receiveCompletions.sorted { $0.id < $1.id }.map(\.status)
            let successes = receiveStatuses.prefix { $0 == .success }.count
            #expect(expected.successfulReceives.contains(successes), "\(successes) receives succeeded: \(receiveStatuses)")
            #expect(receiveStatuses.dropFirst(successes).allSatisfy { $0 == .workRequestFlushError },
                    "receives not delivered are flushed: \(receiveStatuses)")
        } else {
            #expect(record.postedReceives.isEmpty && record.receiveCompletions.isEmpty)
        }

        // 3. Every pin, every cache reference, every registration given back.
        #expect(!record.planRetaining, "the plan still held its retention after the failure")
        #expect(record.pinnedPages == 0)
        #expect(record.cacheReferences == 0)
        #expect(record.regionsLeft == 1, "only the peer's region may remain registered")

        // 4. The destination holds a prefix of the transfer (what completed), and no other
        //    byte of either memory changed: guards, gaps, the source, the rest of the buffer.
        let images = expected.allowedPrefixes.map { memory.expected(from: before, path: scenario.path, prefix: $0) }
        let matched = images.contains { memory.matches($0) }
        #expect(matched, "\(memory.firstDifference(from: images[0], path: scenario.path) ?? "")")
    }
}
