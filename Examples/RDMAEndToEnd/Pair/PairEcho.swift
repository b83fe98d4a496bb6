#if RDMA
import Glibc
import IBVerbs
import IterExtract
import RDMASGE

/// A 64-byte SEND ping-pong between the guests, comparable to `ib_send_lat` (with `-e`
/// for events): the client sends, the server answers every SEND with one of its own,
/// and each side waits for its receive either asleep on the receive queue's channel
/// (``CompletionQueue/wait(timeout:solicitedOnly:)``: poll, arm, poll again, sleep) or
/// by polling. Latency is reported as perftest does: half the round trip.
final class PairEcho {
    /// The message size, as `ib_send_lat -s 64`.
    static let size = 64
    /// Round trips before the clock starts (the first may wait for the peer's receive).
    static let warmUp = 10
    /// The queue pair each side makes for it.
    static let capabilities = QueuePairCapabilities(maxSendWorkRequests: 16, maxReceiveWorkRequests: 4, maxSendSGEs: 1, maxReceiveSGEs: 1)
    private let link: PairLink
    private let events: Bool
    private let buffer: UnsafeMutableRawBufferPointer
    private let region: IBVerbsMemoryRegion
    private var unreapedSends = 0

    /// Echoes over `link`, waiting with events or by polling; posts the first receive.
    init(link: PairLink, domain: IBVerbsProtectionDomain, events: Bool) throws {
        self.link = link
        self.events = events
        buffer = .allocate(byteCount: pageSize, alignment: pageSize)
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
        do {
            region = try domain.registerMemory(buffer, access: .localWrite)
            try postReceive()
        } catch {
            buffer.deallocate()
            throw error
        }
    }

    deinit {
        try? region.deregister()
        buffer.deallocate()
    }

    /// The client's side: `iterations` timed round trips after the warm-up; the
    /// one-way latency in microseconds.
    func ping(iterations: Int) throws -> Double {
        for _ in 0..<Self.warmUp { try roundTrip() }
        let start = ContinuousClock.now
        for _ in 0..<iterations { try roundTrip() }
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return (Double(seconds) * 1e6 + Double(attoseconds) / 1e12) / Double(2 * iterations)
    }

    /// The server's side: answers the warm-up and `iterations` SENDs.
    func answer(iterations: Int) throws {
        for _ in 0..<(Self.warmUp + iterations) {
            try awaitReceive()
            try postReceive()
            try send()
        }
        try reapSends(all: true)
    }

    private func roundTrip() throws {
        try send()
        try awaitReceive()
        try postReceive()
    }

    private func postReceive() throws {
        var sge = SGE(address: UInt64(region.address) + UInt64(Self.size), length: UInt32(Self.size), lkey: region.lkey)
        try withUnsafePointer(to: &sge) { try link.queuePair.postReceive(ReceiveWorkRequest(id: 1, sges: UnsafeBufferPointer(start: $0, count: 1))) }
    }

    /// Posts a SEND (signalled, so that its slot comes back) and takes the send
    /// completions already there, waiting for them only when the queue gets full.
    private func send() throws {
        var sge = SGE(address: UInt64(region.address), length: UInt32(Self.size), lkey: region.lkey)
        try withUnsafePointer(to: &sge) {
            try link.queuePair.postSend(SendWorkRequest(id: 2, opcode: .send, sges: UnsafeBufferPointer(start: $0, count: 1)))
        }
        unreapedSends += 1
        try reapSends(all: unreapedSends >= link.queuePair.capabilities.maxSendWorkRequests / 2)
    }

    private func reapSends(all: Bool) throws {
        while unreapedSends > 0 {
            let completion = all ? try link.sendQueue.wait(timeout: .seconds(30)) : try link.sendQueue.poll()
            guard let completion else {
                if all { throw Failure("a SEND did not complete in 30 s") }
                return
            }
            guard completion.status == .success else { throw Failure("a SEND completed with \(completion)") }
            unreapedSends -= 1
        }
    }

    private func awaitReceive() throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        var completion: WorkCompletion?
        if events {
            completion = try link.receiveQueue.wait(timeout: .seconds(30))
        } else {
            while completion == nil, ContinuousClock.now < deadline { completion = try link.receiveQueue.poll() }
        }
        guard let completion else { throw Failure("no SEND from the peer in 30 s") }
        guard completion.status == .success, completion.byteCount == Self.size else {
            throw Failure("a receive completed with \(completion)")
        }
    }
}
#endif
