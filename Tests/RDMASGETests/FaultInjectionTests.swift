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
