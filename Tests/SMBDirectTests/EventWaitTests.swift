import Glibc
import RDMASGE
import SMBDirect
import SoftVerbs
import TestKit
import Testing

/// The CPU time the calling thread has used.
private func threadCPUTime() -> Duration {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
}

@Suite("SMB Direct waits on events")
struct EventWaitTests {
    @Test("a blocking receive sleeps on the completion channel until the peer's message arrives")
    func receiveSleeps() throws {
        let loop = try SMBDirectLoopback(device: SoftVerbs())
        // Each side progresses on its own thread: nothing drives the peer while waiting.
        loop.initiator.idleHandler = nil
        loop.responder.idleHandler = nil
        final class Box: @unchecked Sendable { let loop: SMBDirectLoopback<SoftVerbs>; init(_ loop: SMBDirectLoopback<SoftVerbs>) { self.loop = loop } }
        let box = Box(loop)
        let peer = JoinableThread(after: .milliseconds(400)) { try! box.loop.initiator.send([7, 8, 9]) }
        let cpuBefore = threadCPUTime()
        let start = ContinuousClock.now
        let message = try loop.responder.receiveMessage()
        let waited = ContinuousClock.now - start
        let cpu = threadCPUTime() - cpuBefore
        peer.join()
        #expect(message == [7, 8, 9])
        #expect(waited >= .milliseconds(300))
        // Spinning for 400 ms costs about that much CPU even on a loaded machine; sleeping costs almost none.
        #expect(cpu < .milliseconds(60), "the wait used \(cpu) of CPU in \(waited)")
        try loop.initiator.progress()
    }
}

@Suite("SMB Direct watches its connection-manager link")
struct LinkWatchTests {
    /// A connection-manager link between two queue pairs of `loop`'s domains, as the
    /// one an SMB Direct connection over librdmacm runs over.
    final class Link: @unchecked Sendable {
        let listener: SoftListener
        let client: SoftConnection
        let server: SoftConnection
        let pairs: [SoftQueuePair]

        init(_ loop: SMBDirectLoopback<SoftVerbs>, host: String) throws {
            let capabilities = QueuePairCapabilities(maxSendWorkRequests: 1, maxReceiveWorkRequests: 1, maxSendSGEs: 1, maxReceiveSGEs: 1)
            pairs = try [loop.initiatorDomain, loop.responderDomain].map { domain in
                let queue = try domain.createCompletionQueue(capacity: 4, channel: nil)
                return try domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue, capabilities: capabilities)
            }
            listener = try SoftListener(device: loop.device, host: host)
            final class Slot: @unchecked Sendable { var connection: Result<SoftConnection, VerbsError>? }
            let slot = Slot()
            let (port, pair) = (listener.port, pairs[0])
            let connecting = JoinableThread {
                slot.connection = Result { () throws(VerbsError) in
                    try SoftConnection.connect(to: host, port: port, queuePair: pair, timeout: .seconds(10))
                }
            }
            let request = try #require(try listener.accept(timeout: .seconds(10)))
            server = try request.accept(pairs[1], timeout: .seconds(10))
            connecting.join()
            client = try #require(slot.connection).get()
            #expect(client.takeEvent() == .established && server.takeEvent() == .established)
        }

        deinit { for pair in pairs { try? pair.close() } }
    }

    @Test("a peer that disconnects while this side sleeps for a message is heard at once, not after the timeout")
    func peerDisconnectEndsWait() throws {
        var configuration = SMBDirectConfiguration()
        configuration.timeout = .seconds(20)
        let loop = try SMBDirectLoopback(device: SoftVerbs(), initiator: configuration, responder: configuration)
        loop.initiator.idleHandler = nil
        loop.responder.idleHandler = nil
        let link = try Link(loop, host: "127.0.0.91")
        loop.responder.watch(link.server)
        let peer = JoinableThread(after: .milliseconds(200)) { link.client.disconnect() }
        let start = ContinuousClock.now
        #expect(throws: SMBDirectError.connectionEnded(.disconnected)) { _ = try loop.responder.receiveMessage() }
        let waited = ContinuousClock.now - start
        peer.join()
        #expect(waited < .seconds(5), "the disconnect was heard after \(waited)")
        #expect(loop.responder.hasFailed)
    }

    @Test("events that do not end the link are taken and ignored")
    func otherEventsIgnored() throws {
        let loop = try SMBDirectLoopback(device: SoftVerbs())
        let link = try Link(loop, host: "127.0.0.92")
        loop.responder.watch(link.server)
        try loop.initiator.send([1, 2, 3])
        #expect(try loop.responder.receiveMessage() == [1, 2, 3])
        #expect(!loop.responder.hasFailed)
    }
}
