import Glibc
import RDMASGE
import SoftVerbs
import TestKit
import Testing

/// Two connected SoftVerbs queue pairs whose completion queues raise events on one
/// channel each (or one for both), and a registered buffer to send from and receive
/// into. The pair's members (`sender`, `receiverQueue`, …) read through.
@dynamicMemberLookup
final class EventedPair: @unchecked Sendable {
    let pair: VerbsPair
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 4096)
    let region: SoftMemoryRegion

    init(sharedChannel: Bool = false) throws {
        pair = try VerbsPair(capabilities: QueuePairCapabilities(maxSendWorkRequests: 64, maxReceiveWorkRequests: 64,
                                                                 maxSendSGEs: 2, maxReceiveSGEs: 2),
                             queueCapacity: 256, channels: sharedChannel ? .shared : .separate)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        region = try pair.domain.registerMemory(buffer, access: .all)
    }

    deinit {
        try? region.deregister()
        buffer.deallocate()
    }

    subscript<Member>(dynamicMember member: KeyPath<VerbsPair, Member>) -> Member { pair[keyPath: member] }

    var senderChannel: SoftCompletionChannel { pair.senderChannel! }
    var receiverChannel: SoftCompletionChannel { pair.receiverChannel! }

    func sge(_ offset: Int, _ length: Int) -> SGE {
        SGE(address: UInt64(UInt(bitPattern: buffer.baseAddress) + UInt(offset)), length: UInt32(length), lkey: region.lkey)
    }

    func receive(id: UInt64) throws {
        var sges = [sge(32_768 + Int(id % 64) * 256, 256)]
        try sges.withUnsafeMutableBufferPointer { try pair.receiver.postReceive(ReceiveWorkRequest(id: id, sges: UnsafeBufferPointer($0))) }
    }

    func send(id: UInt64, flags: SendFlags = .signaled, sgeCount: Int = 1) throws {
        let sges = Array(repeating: sge(0, 64), count: sgeCount)
        try sges.withUnsafeBufferPointer { try pair.sender.postSend(SendWorkRequest(id: id, opcode: .send, sges: $0, flags: flags)) }
    }

    /// Whether the descriptor is readable now.
    static func isReadable(_ descriptor: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1
    }
}

@Suite("Completion channels and events")
struct CompletionEventTests {
    @Test("an armed queue raises one event on its channel's descriptor, and only when armed")
    func armedQueueRaisesOneEvent() throws {
        let x = try EventedPair()
        try x.receive(id: 1)
        try x.send(id: 1)
        #expect(!EventedPair.isReadable(x.receiverChannel.fileDescriptor), "an unarmed queue raises nothing")
        #expect(try x.receiverQueue.poll()?.id == 1)
        try x.receiverQueue.requestNotification(solicitedOnly: false)
        try x.receive(id: 2)
        try x.send(id: 2)
        try x.receive(id: 3)
        try x.send(id: 3)
        #expect(EventedPair.isReadable(x.receiverChannel.fileDescriptor))
        #expect(try x.receiverChannel.takeEvents() == 1, "one event per arming")
        #expect(!EventedPair.isReadable(x.receiverChannel.fileDescriptor))
        #expect(x.receiverQueue.takeNotification())
        #expect(!x.receiverQueue.takeNotification(), "the mark is taken once")
        #expect(!x.senderQueue.takeNotification())
    }

    @Test("a blocking wait sleeps until a completion that arrives later, and times out with nothing")
    func blockingWait() throws {
        let x = try EventedPair()
        try x.receive(id: 5)
        _ = JoinableThread(after: .milliseconds(50)) { try! x.send(id: 5) }
        let completion = try x.receiverQueue.wait(timeout: .seconds(10))
        #expect(completion?.id == 5 && completion?.status == .success)
        let start = ContinuousClock.now
        #expect(try x.receiverQueue.wait(timeout: .milliseconds(30)) == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(30))
    }

    @Test("a completion already queued is returned at once: the poll after arming closes the race")
    func pollAfterArming() throws {
        let x = try EventedPair()
        try x.receive(id: 9)
        try x.send(id: 9)
        #expect(try x.receiverQueue.wait(timeout: .zero)?.id == 9)
    }

    @Test("solicited-only arming wakes for a solicited receive or an error, not for a plain one")
    func solicitedOnly() throws {
        let x = try EventedPair()
        try x.receiverQueue.requestNotification(solicitedOnly: true)
        try x.receive(id: 1)
        try x.send(id: 1)
        #expect(try x.receiverChannel.takeEvents() == 0)
        try x.receive(id: 2)
        try x.send(id: 2, flags: [.signaled, .solicited])
        #expect(try x.receiverChannel.takeEvents() == 1 && x.receiverQueue.takeNotification())
        try x.receiverQueue.requestNotification(solicitedOnly: true)
        try x.receiver.modify(to: .error, remote: nil)
        try x.receive(id: 3)
        #expect(try x.receiverChannel.takeEvents() == 1, "a flushed receive is an error, which always wakes")
    }

    @Test("a channel in use is not destroyed; a destroyed queue's waiting events go with it")
    func channelLifetime() throws {
        let x = try EventedPair()
        #expect(throws: VerbsError(.destroyCompletionChannel, errno: EBUSY, "")) { try x.receiverChannel.close() }
        try x.receiverQueue.requestNotification(solicitedOnly: false)
        try x.receive(id: 1)
        try x.send(id: 1)
        try x.receiver.close()
        try x.receiverQueue.close()
        #expect(try x.receiverChannel.takeEvents() == 0)
        #expect(!EventedPair.isReadable(x.receiverChannel.fileDescriptor), "no event waits, so the descriptor is not readable")
        try x.receiverChannel.close()
        #expect(throws: VerbsError(.getCompletionEvent, errno: EINVAL, "")) { try x.receiverChannel.takeEvents() }
    }

    @Test("a queue without a channel cannot be armed")
    func armingWithoutChannel() throws {
        let device = SoftVerbs()
        let queue = try device.allocateProtectionDomain().createCompletionQueue(capacity: 4)
        #expect(queue.channel == nil)
        #expect(throws: VerbsError(.requestNotification, errno: EINVAL, "")) { try queue.requestNotification(solicitedOnly: false) }
    }

    @Test("async: completions arrive in order through the event loop while another thread posts")
    func asyncCompletions() async throws {
        let x = try EventedPair()
        for id in 1...40 { try x.receive(id: UInt64(id)) }
        _ = JoinableThread(after: .milliseconds(20)) {
            for id in 1...40 {
                try! x.send(id: UInt64(id))
                if id % 8 == 0 { usleep(2000) }
            }
        }
        var ids: [UInt64] = []
        for try await completion in x.receiverQueue.completions() {
            ids.append(completion.id)
            if ids.count == 40 { break }
        }
        #expect(ids == Array(1...40))
    }

    @Test("async: two queues on one channel are each woken for their own completions")
    func sharedChannel() async throws {
        let x = try EventedPair(sharedChannel: true)
        try x.receive(id: 7)
        _ = JoinableThread(after: .milliseconds(30)) { try! x.send(id: 7) }
        async let received = x.receiverQueue.nextCompletion()
        async let sent = x.senderQueue.nextCompletion()
        let (r, s) = try await (received, sent)
        #expect(r?.id == 7 && r?.opcode == .receive)
        #expect(s?.id == 7 && s?.opcode == .send)
    }

    @Test("async: cancelling a waiting task ends its wait at once and loses no completion")
    func cancellation() async throws {
        let x = try EventedPair()
        let waiting = Task { try await x.receiverQueue.nextCompletion() }
        try await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        #expect(try await waiting.value == nil)
        try x.receive(id: 3)
        try x.send(id: 3)
        #expect(try await x.receiverQueue.nextCompletion()?.id == 3, "the completion stays in the queue")
    }

    @Test("device events: a link going down is reported as a typed event, and sends then fail")
    func deviceEvents() async throws {
        let x = try EventedPair()
        #expect(try x.device.takeEvent() == nil)
        _ = JoinableThread(after: .milliseconds(20)) { x.device.setPortActive(false) }
        var events = x.device.events().makeAsyncIterator()
        let event = try await events.next()
        #expect(event == .portError(port: 1) && event?.isFailure == true)
        try x.receive(id: 1)
        try x.send(id: 1)
        #expect(try x.senderQueue.poll()?.status == .retryExceededError)
        #expect(x.sender.state == .error)
        x.device.setPortActive(true)
        #expect(try x.device.takeEvent() == .portActive(port: 1))
    }

    @Test("a chain posts in order; a refused request stops it and is reported by position")
    func chainedPost() throws {
        let x = try EventedPair()
        for id in 1...4 { try x.receive(id: UInt64(id)) }
        let good = [x.sge(0, 64)]
        let tooMany = Array(repeating: x.sge(0, 8), count: 3)
        good.withUnsafeBufferPointer { good in
            tooMany.withUnsafeBufferPointer { tooMany in
                let chain = [
                    SendWorkRequest(id: 1, opcode: .send, sges: good), SendWorkRequest(id: 2, opcode: .send, sges: good),
                    SendWorkRequest(id: 3, opcode: .send, sges: tooMany), SendWorkRequest(id: 4, opcode: .send, sges: good),
                ]
                let error = #expect(throws: VerbsError.self) {
                    try chain.withUnsafeBufferPointer { try x.sender.postSend(chain: $0) }
                }
                #expect(error?.errno == EINVAL && error?.failedRequest == 2)
            }
        }
        var sent: [UInt64] = []
        while let completion = try x.senderQueue.poll() { sent.append(completion.id) }
        #expect(sent == [1, 2])
    }
}
