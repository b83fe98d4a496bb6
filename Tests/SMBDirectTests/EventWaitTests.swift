import Glibc
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
