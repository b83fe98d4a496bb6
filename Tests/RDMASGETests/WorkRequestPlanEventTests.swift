import Glibc
import IterExtract
import RDMASGE
import SoftVerbs
import Testing

@Suite("Work-request plans: chained posting and waiting on events")
struct WorkRequestPlanEventTests {
    /// A plan of `requests` RDMA WRITEs of 1 KiB from the first 16 KiB of the pair's
    /// buffer to the same offsets 16 KiB on.
    func writePlan(_ x: EventedPair, requests: Int) throws -> WorkRequestPlan {
        for i in 0..<requests * 1024 { x.buffer[i] = UInt8(truncatingIfNeeded: i &* 13 &+ 1) }
        let plan = WorkRequestPlan(requestCapacity: requests, limits: .init(maxSGEs: 2, maxMessageSize: 1024))
        var iterator = IOIterator(source: UnsafeRawBufferPointer(rebasing: x.buffer[..<(requests * 1024)]))
        let keys = SingleKeyResolver(region: x.region)
        let remote = UInt64(UInt(bitPattern: x.buffer.baseAddress) + 16_384)
        #expect(try plan.build(from: &iterator, operation: .rdmaWrite(remoteAddress: remote, rkey: x.region.rkey), keys: keys) == requests * 1024)
        return plan
    }

    @Test("awaiting a plan's completion releases it once its last request has completed")
    func awaitPlan() async throws {
        let x = try EventedPair()
        let plan = try writePlan(x, requests: 8)
        try plan.post(on: x.sender)
        #expect(plan.postedCount == 8)
        #expect(try await plan.complete(on: x.senderQueue) == .success)
        #expect(!plan.isRetaining)
        #expect(memcmp(x.buffer.baseAddress!, x.buffer.baseAddress! + 16_384, 8 * 1024) == 0)
    }

    @Test("a refused request in the chain: those before it went out and are waited for, the rest did not")
    func refusedInChain() throws {
        let x = try EventedPair()
        let plan = try writePlan(x, requests: 6)
        x.device.inject(.post(nth: 4))
        let error = #expect(throws: VerbsError.self) { try plan.post(on: x.sender, firstID: 100, signaling: .every) }
        #expect(error?.errno == ENOMEM && error?.failedRequest == 3)
        #expect(plan.postedCount == 3)
        #expect(try plan.complete(waitingOn: x.senderQueue, timeout: .seconds(10)) == .success)
        #expect(try x.senderQueue.poll() == nil, "only the three posted requests completed")
        #expect(memcmp(x.buffer.baseAddress!, x.buffer.baseAddress! + 16_384, 3 * 1024) == 0)
        #expect(memcmp(x.buffer.baseAddress! + 3 * 1024, x.buffer.baseAddress! + 16_384 + 3 * 1024, 1024) != 0)
    }

    @Test("a cancelled await leaves the plan retained, to be completed again")
    func cancelledAwait() async throws {
        let x = try EventedPair()
        let plan = try writePlan(x, requests: 1)
        // A SEND waits for a receive the peer has not posted, so it cannot complete yet.
        var iterator = IOIterator(source: UnsafeRawBufferPointer(rebasing: x.buffer[..<64]))
        plan.release()
        try plan.build(from: &iterator, operation: .send, keys: SingleKeyResolver(region: x.region))
        try plan.post(on: x.sender)
        final class Box: @unchecked Sendable { let plan: WorkRequestPlan; let queue: SoftCompletionQueue
            init(_ plan: WorkRequestPlan, _ queue: SoftCompletionQueue) { self.plan = plan; self.queue = queue } }
        let box = Box(plan, x.senderQueue)
        let waiting = Task { try await box.plan.complete(on: box.queue) }
        try await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        let result = await waiting.result
        #expect(throws: VerbsError(.pollCompletionQueue, errno: ECANCELED, "")) { try result.get() }
        #expect(plan.isRetaining)
        try x.receive(id: 1)
        #expect(try await plan.complete(on: x.senderQueue) == .success)
        #expect(!plan.isRetaining)
    }
}
